"""What a handler gets from the runner, and the one way a handler ends its job.

Handlers import this module, never worker/runner.py: the runner imports the handler table
(worker/handlers.py), so the context lives below both and no import goes in a loop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from core.artifacts import service as artifacts
from core.config import Settings
from core.jobs import events, transitions
from core.jobs.orm import Job
from core.jobs.states import JobStatus
from core.storage import Storage, StoredObject
from worker.progress import CancelCheck, JobProgress

log = logging.getLogger("synthgen.worker")


@dataclass
class JobContext:
    settings: Settings
    storage: Storage
    job: Job
    workdir: Path
    progress: JobProgress
    should_stop: CancelCheck
    # The uploaded datasets this job has read, by id (worker/datasets/load.py): a job
    # reads each dataset's row once, however many of its facts it needs.
    datasets: dict[str, Any] = field(default_factory=dict)

    @property
    def prefix(self) -> str:
        return f"jobs/{self.job.id}"

    def output(self, **what: object) -> None:
        """Emit an ``output`` event saying what was just written (while still running)."""
        with events.session_scope(self.settings) as session:
            if transitions.heartbeat(session=session, job_id=self.job.id):
                events.record(
                    session=session, job_id=self.job.id, type=events.EventType.output, output=what
                )


def finish(
    ctx: JobContext,
    *,
    result: dict[str, object],
    objects: list[tuple[str, StoredObject]],
    register: Callable[..., dict[str, object]] | None = None,
) -> None:
    """Record artifacts (already in storage), run ``register`` (e.g. add a model version)
    and mark the job succeeded, all in one transaction: a job canceled meanwhile records
    and registers nothing (its objects are deleted as it ends), and a run whose job was
    taken back and claimed again (``attempts`` moved on) leaves the ending to that run."""
    with events.session_scope(ctx.settings) as session:
        attempts = session.scalar(
            select(Job.attempts).where(Job.id == ctx.job.id).with_for_update()
        )
        if attempts != ctx.job.attempts:
            log.info("job %s was taken back while it finished; its new run ends it", ctx.job.id)
            return
        artifacts.record(session=session, job_id=ctx.job.id, objects=objects)
        if register is not None:
            result = {**result, **register(session)}
        if not transitions.try_transition(
            session=session,
            job_id=ctx.job.id,
            target=JobStatus.succeeded,
            result=result,
            progress={**(ctx.progress.last or {}), "fraction": 1.0, "eta_seconds": 0.0},
        ):
            session.rollback()
            log.info("job %s was canceled before it could succeed", ctx.job.id)
