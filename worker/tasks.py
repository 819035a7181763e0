"""Thin tasks that take ids and call the runner (Celery's task guide)."""

from __future__ import annotations

from typing import Any

from celery.signals import worker_ready

from core import retention as retention_sweep
from core.config import get_settings
from core.queue import (
    DELIVER_WEBHOOK,
    PREVIEW_QUEUE,
    RECONCILE,
    RETENTION,
    RUN_JOB,
    RUN_PREVIEW,
    queue_name,
)
from core.storage import from_settings as storage_from_settings
from worker import reconcile as reconciler
from worker import runner, webhooks
from worker.celery_app import app


@app.task(name=RUN_JOB)
def run_job(job_id: str) -> str:
    return runner.run_job(job_id, settings=get_settings())


@app.task(name=RUN_PREVIEW)
def run_preview(preview_id: str) -> str:
    # Imported here, not at module level: the cpu worker never needs torch.
    from worker import preview

    return preview.run_preview(preview_id, settings=get_settings())


@app.task(name=RECONCILE)
def reconcile() -> dict[str, int]:
    return reconciler.reconcile(get_settings())


@app.task(name=RETENTION)
def retention() -> dict[str, int]:
    settings = get_settings()
    return retention_sweep.sweep(settings=settings, storage=storage_from_settings(settings))


@app.task(name=DELIVER_WEBHOOK)
def deliver_webhooks(job_id: str) -> dict[str, int]:
    return webhooks.deliver(job_id, settings=get_settings())


@worker_ready.connect
def _warm_preview_worker(sender: Any, **_: Any) -> None:
    """A preview worker imports torch and the engines at start, not at its first preview
    (seconds a user would otherwise wait on the playground's first click)."""
    consumed = {q.name for q in sender.task_consumer.queues}
    if queue_name(get_settings(), PREVIEW_QUEUE) in consumed:
        from worker import preview  # noqa: F401
