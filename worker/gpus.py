"""A worker on a multi-GPU host also takes the multi-GPU train jobs it can run.

A job asking for N GPUs is published to ``gpu.N`` (core.queue.queue_for); a worker that
consumes ``gpu`` and has G GPUs adds ``gpu.2`` … ``gpu.G`` to its queues at start, so a job
waits for a host with enough GPUs and Celery's routing does the placing. G is
``SYNTHGEN_WORKER_GPUS`` when set, else what NVML counts (fork-safe: CUDA itself must not
start in the pool's parent), within ``CUDA_VISIBLE_DEVICES`` when that is set.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery, signals

from core.config import Settings
from core.queue import declare, gpu_queues, queue_name

log = logging.getLogger("synthgen.worker")


def visible_gpus(cuda_visible_devices: str | None) -> int:
    """GPUs this worker may use: NVML's count, or fewer when ``CUDA_VISIBLE_DEVICES``
    names fewer; 0 without NVML or a GPU."""
    try:
        import pynvml

        pynvml.nvmlInit()
        count = int(pynvml.nvmlDeviceGetCount())
    except Exception:  # noqa: BLE001 - no NVML library, driver or device
        return 0
    if cuda_visible_devices is None:
        return count
    named = [d for d in cuda_visible_devices.split(",") if d.strip()]
    return min(count, len(named))


def subscribe(app: Celery, settings: Settings, gpus: int) -> list[str]:
    """Add ``gpu.2`` … ``gpu.{gpus}`` to the queues of a worker consuming ``gpu``; returns
    the names added."""
    queues = app.amqp.queues
    if queue_name(settings, "gpu") not in queues.consume_from:
        return []
    extra = [queue_name(settings, q) for q in gpu_queues(gpus)[1:]]
    for name in extra:
        # Declared as the publisher declares it: Celery's select_add(name) would bind it
        # to the default exchange, where the job's message never arrives.
        queues.select_add(declare(name))
    return extra


def install(settings: Settings, cuda_visible_devices: str | None) -> None:
    @signals.celeryd_after_setup.connect(weak=False)
    def _subscribe(sender: str, instance: Any, **_: Any) -> None:
        gpus = settings.worker_gpus
        if gpus is None:
            gpus = visible_gpus(cuda_visible_devices)
        extra = subscribe(instance.app, settings, gpus)
        if extra:
            log.info("%d GPUs: also taking train jobs from %s", gpus, ", ".join(extra))
