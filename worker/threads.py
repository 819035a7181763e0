"""How many CPU threads torch may use in a worker process, chosen at the process's start.

torch's default is one intra-op thread per core of the machine, in every process. A
Celery worker with ``--concurrency 4`` then runs 4 × cores threads, and a worker sharing
the host with another busy process (the embedded stack's preview worker, another job)
runs more threads than it has cores: OpenMP's threads wait for each other at every
parallel region, and a step slows by an order of magnitude, not by the share it lost
(bench/threads.py, BENCHMARKS.md). So a worker divides the cores it may use, by its
affinity mask and its cgroup's CPU quota, less the cores its settings leave to others,
among its pool's processes; ``SYNTHGEN_TORCH_THREADS`` overrides the choice, and so does
``OMP_NUM_THREADS`` when set (torch's own reading of it: an operator who set it meant it).

Prefork children set it in ``worker_process_init`` (torch is process-wide state, and the
pool's parent never runs torch); a solo or threads pool sets it in its main process at
``worker_init``. Only workers that consume a queue whose tasks run torch import it.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from celery import signals

from core.config import Settings
from core.queue import PREVIEW_QUEUE, queue_name

log = logging.getLogger("synthgen.worker")

CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


@dataclass(frozen=True)
class Threads:
    """torch's intra-op threads (``set_num_threads``) and inter-op threads."""

    intra_op: int
    inter_op: int


def choose_threads(
    *,
    cores: int,
    concurrency: int,
    quota: float | None = None,
    reserved: int = 0,
    override: int | None = None,
) -> Threads:
    """Threads for one pool process.

    cores: CPUs this process may run on (its affinity mask).
    concurrency: processes (or threads) of the pool that may run torch at once.
    quota: the cgroup's CPU limit in cores (``cpu.max``), None when unlimited; a
        fractional quota rounds down, since a thread past it is throttled, not scheduled.
    reserved: cores left to other processes on the host.
    override: the operator's choice, used as given.

    Every process gets at least one thread. Inter-op threads serve only
    ``torch.jit.fork``-style parallel tasks, which no engine uses: one is enough.
    """
    if override is not None:
        return Threads(intra_op=max(1, override), inter_op=1)
    usable = min(cores, math.floor(quota)) if quota is not None else cores
    return Threads(intra_op=max(1, (usable - reserved) // max(1, concurrency)), inter_op=1)


def affinity_cores() -> int:
    """CPUs this process may run on (its affinity mask; all CPUs where that is unknown)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def cgroup_quota(path: Path = CGROUP_CPU_MAX) -> float | None:
    """The cgroup v2 CPU limit in cores ("200000 100000" → 2.0), None when unlimited or
    unknown (no cgroup v2, "max")."""
    try:
        limit, period = path.read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if limit == "max":
        return None
    return int(limit) / int(period)


def explicit_threads(settings: Settings, environ: Mapping[str, str] = os.environ) -> int | None:
    """The operator's thread count: ``SYNTHGEN_TORCH_THREADS``, else a valid
    ``OMP_NUM_THREADS``, else None (choose)."""
    if settings.torch_threads is not None:
        return settings.torch_threads
    value = environ.get("OMP_NUM_THREADS", "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


def apply(settings: Settings, concurrency: int) -> Threads:
    """Choose threads for this process and give them to torch; logged, since it decides
    how fast every job of this worker runs."""
    import torch

    cores, quota = affinity_cores(), cgroup_quota()
    threads = choose_threads(
        cores=cores,
        concurrency=concurrency,
        quota=quota,
        reserved=settings.worker_reserved_cores,
        override=explicit_threads(settings),
    )
    torch.set_num_threads(threads.intra_op)
    try:
        torch.set_num_interop_threads(threads.inter_op)
    except RuntimeError:
        # Only settable before the first inter-op task; a process that already ran one
        # keeps its pool (it is idle in eager code either way).
        log.info(
            "torch inter-op threads already started; left at %d", torch.get_num_interop_threads()
        )
    log.info(
        "torch threads: %d intra-op, %d inter-op (cores %d, cgroup quota %s, concurrency %d, "
        "reserved %d, SYNTHGEN_TORCH_THREADS %s, OMP_NUM_THREADS %s)",
        torch.get_num_threads(), torch.get_num_interop_threads(), cores, quota, concurrency,
        settings.worker_reserved_cores, settings.torch_threads, os.environ.get("OMP_NUM_THREADS"),
    )  # fmt: skip
    return threads


def install(settings: Settings) -> None:
    """Set torch's threads in every process of a worker that runs torch."""
    pool: dict[str, int] = {}

    @signals.worker_init.connect(weak=False)
    def _decide(sender: Any, **_: Any) -> None:
        # gpu, its gpu.N queues (multi-GPU jobs) and previews run torch.
        torch_queues = (queue_name(settings, "gpu"), queue_name(settings, PREVIEW_QUEUE))
        if not any(name.startswith(torch_queues) for name in sender.app.amqp.queues.consume_from):
            return  # the bookkeeping worker never imports torch
        kind = getattr(sender.pool_cls, "__module__", str(sender.pool_cls))
        # A solo pool runs one task at a time whatever --concurrency says.
        pool["concurrency"] = 1 if kind.endswith("solo") else int(sender.concurrency or 1)
        pool["prefork"] = kind.endswith("prefork")

    @signals.worker_process_init.connect(weak=False)
    def _child(**_: Any) -> None:
        if pool.get("prefork"):
            apply(settings, pool["concurrency"])

    # A solo or threads pool runs tasks in the main process: set once it is ready (its
    # logging is configured by then, and no task has run yet).
    @signals.worker_ready.connect(weak=False)
    def _main(**_: Any) -> None:
        if pool and not pool["prefork"]:
            apply(settings, pool["concurrency"])
