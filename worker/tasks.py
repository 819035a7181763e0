"""Thin tasks that take ids and call the runner (Celery's task guide)."""

from __future__ import annotations

from core import retention as retention_sweep
from core.config import get_settings
from core.queue import RECONCILE, RETENTION, RUN_JOB
from core.storage import from_settings as storage_from_settings
from worker import reconcile as reconciler
from worker import runner
from worker.celery_app import app


@app.task(name=RUN_JOB)
def run_job(job_id: str) -> str:
    return runner.run_job(job_id, settings=get_settings())


@app.task(name=RECONCILE)
def reconcile() -> dict[str, int]:
    return reconciler.reconcile(get_settings())


@app.task(name=RETENTION)
def retention() -> dict[str, int]:
    settings = get_settings()
    return retention_sweep.sweep(settings=settings, storage=storage_from_settings(settings))
