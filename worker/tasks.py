"""Thin tasks that take ids and call the runner (Celery's task guide)."""

from __future__ import annotations

from core.config import get_settings
from core.queue import RECONCILE, RUN_JOB, RUN_PREVIEW
from worker import reconcile as reconciler
from worker import runner
from worker.celery_app import app


@app.task(name=RUN_JOB)
def run_job(job_id: str) -> str:
    return runner.run_job(job_id, settings=get_settings())


@app.task(name=RUN_PREVIEW)
def run_preview(preview_id: str) -> str:
    # Imported here: only the preview worker loads torch for it, at its first preview.
    from worker import preview

    return preview.run_preview(preview_id, settings=get_settings())


@app.task(name=RECONCILE)
def reconcile() -> dict[str, int]:
    return reconciler.reconcile(get_settings())
