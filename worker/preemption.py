"""Warm shutdown as preemption: SIGTERM (``kubectl drain``, a spot instance's notice,
``docker stop``) makes the running job checkpoint and go back to the queue at once.

Celery's warm shutdown waits for the running task, and a week-long train job would run on
until the SIGKILL that follows the grace period, losing everything since its last
checkpoint. Instead, on SIGTERM:

1. the main process (``worker_shutting_down``) passes SIGTERM on to each pool child that
   is running a job (a child of a cgroup-wide stop gets it directly; either way once is
   enough);
2. the child's handler sets :data:`REQUESTED`; the job's ``should_stop()`` turns true at
   its next step;
3. the train loop writes a checkpoint at that step, the runner uploads it and moves the
   job ``running → queued`` as a preemption (not a failure) and publishes it again;
4. the task returns and the worker exits, well inside a 30 s grace period.

A child keeps this handler for its life, so SIGTERM never kills it mid-step; SIGKILL
still does (and the reconciler then resumes the job from its last periodic checkpoint).
"""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType
from typing import Any

from billiard.process import current_process
from celery.signals import task_prerun, worker_shutting_down
from celery.worker import state

from core.queue import RUN_JOB

REQUESTED = threading.Event()


def requested() -> bool:
    return REQUESTED.is_set()


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    REQUESTED.set()


def install() -> None:
    """Connect the handlers to Celery's signals (once; the worker's app does it)."""
    task_prerun.connect(_install_child_handler, weak=False)
    worker_shutting_down.connect(_preempt_running_jobs, weak=False)


def _install_child_handler(**_: Any) -> None:
    # In a pool child only (billiard resets the child's signals after its initializer,
    # so this is done when a task starts): the main process keeps Celery's own handler.
    if current_process().name != "MainProcess":
        signal.signal(signal.SIGTERM, _on_sigterm)


def _preempt_running_jobs(**_: Any) -> None:
    for request in list(state.active_requests):
        pid = request.worker_pid
        if request.name != RUN_JOB or pid is None:
            continue
        if pid == os.getpid():  # solo or threads pool: the job runs in this process
            REQUESTED.set()
            continue
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
