"""The worker's Celery app: queues ``gpu`` and ``cpu``, late acks, prefetch 1, the
reconciler and the retention sweep on Celery beat, and SIGTERM as preemption
(worker/preemption.py). Settings come from core.config like everywhere else."""

from __future__ import annotations

from core.config import get_settings
from core.queue import RECONCILE, RETENTION, make_celery, queue_name
from worker import preemption  # noqa: F401 - connects the shutdown signal handlers

settings = get_settings()
app = make_celery(settings, main="synthgen-worker")
app.conf.update(
    include=["worker.tasks"],
    beat_schedule={
        "reconcile": {
            "task": RECONCILE,
            "schedule": settings.reconcile_interval_s,
            "options": {"queue": queue_name(settings, "cpu")},
        },
        "retention": {
            "task": RETENTION,
            "schedule": settings.retention_interval_s,
            "options": {"queue": queue_name(settings, "cpu")},
        },
    },
)
