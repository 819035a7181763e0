"""The worker's Celery app: queues ``gpu`` and ``cpu``, late acks, prefetch 1, and the
reconciler on Celery beat. Settings come from core.config like everywhere else."""

from __future__ import annotations

from core.config import get_settings
from core.queue import RECONCILE, make_celery, queue_name

settings = get_settings()
app = make_celery(settings, main="synthgen-worker")
app.conf.update(
    include=["worker.tasks"],
    beat_schedule={
        "reconcile": {
            "task": RECONCILE,
            "schedule": 30.0,
            "options": {"queue": queue_name(settings, "cpu")},
        }
    },
)
