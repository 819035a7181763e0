"""A job row as users see it (``JobOut``): the API's answers, events' snapshots, webhooks.

Who commits: nothing here; it reads attributes already loaded.
"""

from __future__ import annotations

from core.db import as_utc
from core.jobs.orm import Job
from core.jobs.schemas import JobOut


def urls(job_id: str, base_url: str) -> dict[str, str]:
    prefix = f"{base_url}/v1/jobs/{job_id}"
    return {"get": prefix, "cancel": f"{prefix}/cancel", "artifacts": f"{prefix}/artifacts"}


def to_out(job: Job, *, base_url: str = "") -> JobOut:
    return JobOut.model_validate(
        {
            "id": job.id,
            "kind": job.kind,
            "status": job.status,
            "request": job.request,
            "progress": job.progress,
            "result": job.result,
            "error": job.error,
            "created_at": as_utc(job.created_at),
            "started_at": as_utc(job.started_at) if job.started_at else None,
            "completed_at": as_utc(job.completed_at) if job.completed_at else None,
            "attempts": job.attempts,
            "preemptions": job.preemptions,
            "urls": urls(job.id, base_url),
        }
    )
