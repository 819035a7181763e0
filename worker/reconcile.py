"""The reconciler (Celery beat, every 30 s): Postgres is the truth, Redis only carries
messages, so anything a lost message or a dead worker left behind is repaired from rows.

- outbox rows never published (broker down at submit) are published;
- ``queued`` jobs older than ``requeue_after_s`` are published again (a duplicate message
  is harmless: the runner's compare-and-set start lets only one run);
- ``running`` jobs whose heartbeat stopped go back to ``queued`` (resuming from their
  last checkpoint), or to ``failed`` (their partial outputs deleted) after
  ``max_attempts`` lost workers (runs handed back on a warm shutdown do not count);
- datasets and model imports an older server left working after their job ended are
  made invalid (core/upload_lifecycle.py: today a job's end settles its row at once);
- webhook deliveries left due with nobody sending them (their message was lost, or the
  process died between committing an event and publishing its delivery) are sent.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select

from core import queue, upload_lifecycle
from core.config import Settings
from core.db import session_scope, utcnow
from core.jobs import events, idempotency, outbox, transitions
from core.jobs.orm import Job, Outbox
from core.jobs.states import JobKind, JobStatus
from core.previews import service as previews
from core.storage import from_settings as storage_from_settings
from core.webhooks import service as webhooks
from worker import metrics, runner

log = logging.getLogger("synthgen.reconciler")
# A delivery due this long with no sender holding it has lost its message.
WEBHOOK_GRACE_S = 5.0


def reconcile(settings: Settings) -> dict[str, int]:
    counts = {"published": 0, "requeued": 0, "failed": 0, "webhook_jobs": 0, "settled": 0}
    now = utcnow()
    with events.session_scope(settings) as session:
        stale_outbox = session.scalars(
            select(Outbox).where(
                Outbox.published_at.is_(None), Outbox.created_at < now - timedelta(seconds=5)
            )
        ).all()
        republish = {row.job_id for row in stale_outbox}
        republish |= set(
            session.scalars(
                select(Job.id).where(
                    Job.status == JobStatus.queued,
                    Job.created_at < now - timedelta(seconds=settings.requeue_after_s),
                )
            )
        )
        dead = session.scalars(
            select(Job).where(
                Job.status == JobStatus.running,
                Job.heartbeat_at < now - timedelta(seconds=settings.heartbeat_timeout_s),
            )
        ).all()
        given_up = []
        for job in dead:
            # Preemptions handed the job back cleanly; only lost workers count.
            lost = job.attempts - job.preemptions
            if lost >= settings.max_attempts:
                error = {
                    "type": "WorkerLost",
                    "message": f"the worker running this job stopped "
                    f"responding {lost} times; the job was given up",
                }
                if transitions.try_transition(
                    session=session, job_id=job.id, target=JobStatus.failed, error=error
                ):
                    counts["failed"] += 1
                    given_up.append(job.id)
                    metrics.job_finished(
                        kind=str(job.kind),
                        engine=runner.engine_of(session=session, job=job),
                        status=JobStatus.failed,
                    )
            elif transitions.try_transition(
                session=session, job_id=job.id, target=JobStatus.queued
            ):
                republish.add(job.id)
                counts["requeued"] += 1
        queues = {
            job_id: queue.queue_for(JobKind(kind), request)
            for job_id, kind, request in session.execute(
                select(Job.id, Job.kind, Job.request).where(Job.id.in_(republish))
            ).all()
        }
    for job_id in republish:
        try:
            queue.publish_job(settings, job_id, queues[job_id])
        except Exception:  # noqa: BLE001 - broker still down: next round retries
            log.warning("could not publish job %s; will retry", job_id)
            continue
        with session_scope(settings.database_url) as session:
            outbox.mark_published(session=session, job_ids=[job_id])
        counts["published"] += 1
    with session_scope(settings.database_url) as session:
        idempotency.purge_expired_idempotency_keys(session=session)
        counts["settled"] = upload_lifecycle.settle_stale(session=session)
        stale_previews = previews.purge(session=session, ttl_s=settings.preview_ttl_s)
        due = webhooks.due_jobs(session=session, older_than_s=WEBHOOK_GRACE_S)
    for job_id in due:
        webhooks.publish(settings, job_id)
    counts["webhook_jobs"] = len(due)
    if stale_previews:
        storage = storage_from_settings(settings)
        for key in stale_previews:
            storage.delete_prefix(key)
    if given_up:
        storage = storage_from_settings(settings)
        for job_id in given_up:
            runner.discard_outputs(storage, job_id)
    return counts
