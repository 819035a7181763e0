"""The worker's Celery app: queues ``gpu`` and ``cpu``, late acks, prefetch 1, the
reconciler and the retention sweep on Celery beat, and SIGTERM as preemption
(worker/preemption.py). Settings come from core.config like everywhere else."""

from __future__ import annotations

import logging.config
import os
from typing import Any

from celery import signals

from core.config import get_settings
from core.queue import RECONCILE, RETENTION, make_celery, queue_name
from core.telemetry import logs
from worker import gpus, metrics, preemption, threads

preemption.install()

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
metrics.install(settings)
threads.install(settings)
# CUDA_VISIBLE_DEVICES is CUDA's own variable, not a setting: read where the worker starts.
gpus.install(settings, os.environ.get("CUDA_VISIBLE_DEVICES"))

if settings.broker_url.startswith("sqla+"):
    # The SQL transport (embedded stack) polls for messages once a second by default, which
    # a preview would wait for. Its `polling_interval` option is handed on to SQLAlchemy's
    # create_engine by kombu, which refuses it, so the transport's own default is lowered.
    from kombu.transport import sqlalchemy as kombu_sqla

    kombu_sqla.Transport.polling_interval = 0.1


@signals.setup_logging.connect(weak=False)
def _json_logs(loglevel: int | str | None = None, **_: Any) -> None:
    # Connected, this replaces Celery's own logging set-up with JSON lines (worker, beat).
    logging.config.dictConfig(logs.config(loglevel or settings.log_level))
