"""Thin tasks that take ids and call the runner (Celery's task guide)."""

from __future__ import annotations

from core.config import get_settings
from core.queue import DELIVER_WEBHOOK, RECONCILE, RUN_JOB
from worker import reconcile as reconciler
from worker import runner, webhooks
from worker.celery_app import app


@app.task(name=RUN_JOB)
def run_job(job_id: str) -> str:
    return runner.run_job(job_id, settings=get_settings())


@app.task(name=RECONCILE)
def reconcile() -> dict[str, int]:
    return reconciler.reconcile(get_settings())


@app.task(name=DELIVER_WEBHOOK)
def deliver_webhooks(job_id: str) -> dict[str, int]:
    return webhooks.deliver(job_id, settings=get_settings())
