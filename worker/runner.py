"""The job logic behind the ``run_job`` task: plain Python, testable without a broker.

1. claim the job with a compare-and-set ``queued → running`` (a redelivered message finds
   it running or finished and does nothing);
2. parse the job's request once with its kind's schema and run the kind's handler
   (worker/handlers.py) with progress, cancel checks and a heartbeat; the handler returns
   an :class:`~worker.outcome.Outcome` (result, files, what to register);
3. store the outcome's files, then record them as artifacts, register what it says and
   move the job to ``succeeded`` in one transaction (a job is never succeeded with an
   artifact missing; a job canceled or taken back meanwhile records and registers nothing);
4. any failure becomes ``error {type, message}``: a user's mistake in words they can act
   on, a bug as an error id (worker/failures.py); what the job had written to storage is
   deleted (a failed or canceled job leaves nothing), and so is what it owns elsewhere
   (``JobContext.delete_on_failure``);
5. a job stopped by the worker's warm shutdown goes back to ``queued`` (worker/preemption.py).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import quotas
from core.artifacts import service as artifacts
from core.config import Settings
from core.datasets import service as datasets
from core.db import session_scope
from core.errors import DatasetNotFound, ImportNotFound, InvalidTransition, StorageError
from core.imports import service as imports
from core.jobs import events, queries, submission, transitions
from core.jobs.orm import Job, Outbox
from core.jobs.states import JobKind, JobStatus
from core.model_versions import service as model_versions
from core.model_versions.orm import ModelVersion
from core.queue import QUEUE_FOR_KIND, RUN_JOB, queue_for
from core.storage import Storage, StoredObject
from core.storage import from_settings as storage_from_settings
from core.telemetry import logs
from worker import failures, preemption
from worker.context import JobContext
from worker.metrics import JobMeter
from worker.outcome import DatasetReady, Evaluation, File, NewVersion, Outcome, Registration
from worker.progress import CancelCheck, Heartbeat, JobProgress

__all__ = ["JobContext", "claim", "discard_outputs", "engine_of", "run_job", "succeed"]

log = logging.getLogger("synthgen.worker")


def claim(settings: Settings, job_id: str) -> Job | None:
    """queued → running, or None when another delivery already took (or ended) the job,
    or when its tenant already runs ``max_running_jobs`` (it waits in the queue and the
    reconciler sends it again)."""
    with events.session_scope(settings) as session:
        job = session.get(Job, job_id)
        if job is None or job.status != JobStatus.queued:
            return None
        if not quotas.may_start(session=session, settings=settings, tenant_id=job.tenant_id):
            log.info("job %s waits: its tenant runs max_running_jobs already", job_id)
            return None
        if not transitions.try_transition(
            session=session, job_id=job_id, target=JobStatus.running, attempts=job.attempts + 1
        ):
            return None
        session.refresh(job)
        session.expunge(job)
        return job


def engine_of(*, session: Session, job: Job) -> str:
    """The engine a job runs (its model version's, unless it trains one): a metrics label."""
    if job.kind == JobKind.train:
        return str(job.request.get("engine", "unknown"))
    engine = session.scalar(
        select(ModelVersion.engine).where(ModelVersion.id == job.model_version_id)
    )
    return engine or "unknown"


def run_job(job_id: str, *, settings: Settings, storage: Storage | None = None) -> str:
    """Run one job to a terminal state; returns the status it ended in (or "skipped")."""
    if preemption.requested():
        return "skipped"  # this worker is shutting down; the job stays queued
    with logs.context(job_id=job_id):
        return _run(job_id, settings, storage)


def _run(job_id: str, settings: Settings, storage: Storage | None) -> str:
    job = claim(settings, job_id)
    if job is None:
        log.info("job %s not claimable (already taken or finished); skipping", job_id)
        return "skipped"
    logs.bind(tenant=job.tenant_id)
    with session_scope(settings.database_url) as session:
        engine = engine_of(session=session, job=job)
    assert job.started_at is not None  # noqa: S101 - set by the claim
    meter = JobMeter(
        kind=str(job.kind),
        engine=engine,
        queue=QUEUE_FOR_KIND[JobKind(job.kind)],
        queue_wait_s=(job.started_at - job.created_at).total_seconds(),
    )
    log.info("job started", extra={"kind": str(job.kind), "engine": engine})
    storage = storage or storage_from_settings(settings)
    progress = JobProgress(settings, job_id, stage=str(job.kind), meter=meter.progress)
    should_stop = CancelCheck(settings.database_url, job_id, attempt=job.attempts)
    workdir: Path | None = None
    ctx: JobContext[Any] | None = None
    try:
        settings.work_dir.mkdir(parents=True, exist_ok=True)
        workdir = Path(tempfile.mkdtemp(prefix=f"job-{job_id[:8]}-", dir=settings.work_dir))
        ctx = JobContext(settings, storage, job, workdir, progress, should_stop)
        with meter.busy(), Heartbeat(settings.database_url, job_id, settings.heartbeat_interval_s):
            # Imported at the first job, not with the runner: it loads torch
            # (worker/handlers.py). Under the heartbeat: on a loaded host the import alone
            # can outlast the heartbeat timeout, and the reconciler would hand the job to
            # another worker while this one is still starting it.
            from worker.handlers import HANDLERS, REQUESTS

            kind = JobKind(job.kind)
            ctx.request = REQUESTS[kind].validate_python(job.request)
            outcome = HANDLERS[kind](ctx)
            succeed(ctx, outcome, store(ctx, outcome.files))
    except BaseException as exc:  # noqa: BLE001 - every failure must end the job
        # Not when preempted: the job goes back to the queue and its next run needs what
        # it owns (a dataset's upload, a model import's files) to start over.
        ending = not should_stop.preempted and not isinstance(exc, KeyboardInterrupt | SystemExit)
        if ctx is not None and ending:
            for prefix in ctx.owned:
                _delete(storage, prefix, job_id)
        if should_stop.preempted:
            _requeue(settings, job)
        else:
            _fail(settings, job_id, exc)
    finally:
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)
    with session_scope(settings.database_url) as session:
        status = queries.status_of(session=session, job_id=job_id)
    if status in (JobStatus.failed, JobStatus.canceled):
        discard_outputs(storage, job_id)
    meter.finished(str(status))
    log.info("job ended", extra={"status": str(status)})
    return str(status)


def store(ctx: JobContext[Any], files: list[File]) -> list[tuple[str, StoredObject]]:
    """The outcome's files in storage under the job's prefix, as ``(name, object)``
    pairs (those the handler stored while it ran are there already)."""
    objects = []
    for file in files:
        if isinstance(file.data, StoredObject):
            obj = file.data
        elif isinstance(file.data, Path):
            obj = ctx.put_file(file.name, file.data, file.content_type)
        else:
            obj = ctx.put_bytes(file.name, file.data, file.content_type)
        objects.append((file.name, obj))
    return objects


def succeed(
    ctx: JobContext[Any], outcome: Outcome, objects: list[tuple[str, StoredObject]]
) -> None:
    """Record the artifacts (already in storage), register what the outcome says and mark
    the job succeeded, all in one transaction: a job canceled meanwhile records and
    registers nothing (its objects are deleted as it ends), and a run whose job was taken
    back and claimed again (``attempts`` moved on) leaves the ending to that run."""
    job = ctx.job
    with events.session_scope(ctx.settings) as session:
        attempts = session.scalar(select(Job.attempts).where(Job.id == job.id).with_for_update())
        if attempts != job.attempts:
            log.info("job %s was taken back while it finished; its new run ends it", job.id)
            return
        artifacts.record(session=session, job_id=job.id, objects=objects)
        result = outcome.result
        if outcome.register is not None:
            result = {**result, **_register(session, ctx, outcome.register)}
        if not transitions.try_transition(
            session=session,
            job_id=job.id,
            target=JobStatus.succeeded,
            result=result,
            progress={**(ctx.progress.last or {}), "fraction": 1.0, "eta_seconds": 0.0},
        ):
            session.rollback()
            log.info("job %s was canceled before it could succeed", job.id)


def _register(session: Session, ctx: JobContext[Any], what: Registration) -> dict[str, Any]:
    """What the job's success adds to the registry; returns what its result gains."""
    match what:
        case NewVersion():
            version = model_versions.register(
                session=session,
                tenant_id=ctx.job.tenant_id,
                name=what.name,
                engine=what.engine,
                dataset=what.dataset,
                config=what.config,
                spec=what.spec,
                metrics=what.metrics,
                checkpoint_uri=ctx.key("model/"),
                train_job_id=None if what.import_id else ctx.job.id,
                parent_id=what.parent_id,
                lineage=what.lineage,
            )
            if what.import_id and not imports.mark_registered(
                session=session, import_id=what.import_id, model_version_id=version.id
            ):
                raise ImportNotFound(f"import {what.import_id} is no longer importing")
            return {"model_version": model_versions.summary(version)}
        case Evaluation():
            model_versions.attach_metrics(
                session=session, version_id=what.version_id, metrics=what.metrics
            )
        case DatasetReady():
            if not datasets.mark_ready(
                session=session,
                dataset_id=what.dataset_id,
                sha256=what.sha256,
                summary=what.summary,
            ):
                raise DatasetNotFound(
                    f"dataset {what.dataset_id} was deleted while it was validated"
                )
    return {}


def _requeue(settings: Settings, job: Job) -> None:
    """running → queued on the worker's warm shutdown, counted as a preemption (not a
    failure), with a fresh outbox row: the job's message is sent again even if this
    worker dies before it publishes it."""
    try:
        with events.session_scope(settings) as session:
            transitions.transition(
                session=session,
                job_id=job.id,
                target=JobStatus.queued,
                preemptions=Job.preemptions + 1,
            )
            session.add(
                Outbox(
                    job_id=job.id,
                    task_name=RUN_JOB,
                    queue=queue_for(JobKind(job.kind), job.request),
                )
            )
    except InvalidTransition:
        return  # canceled meanwhile: nothing to hand back
    log.info("job %s preempted by the worker's shutdown; back in the queue", job.id)
    with session_scope(settings.database_url) as session:
        submission.publish(session=session, settings=settings, job=job)


def discard_outputs(storage: Storage, job_id: str) -> None:
    """Delete what a job that did not succeed wrote (partial images, checkpoints, shards).
    With the store unreachable they stay until the retention sweep (core/retention.py)."""
    _delete(storage, f"{artifacts.prefix_of(job_id)}/", job_id)


def _delete(storage: Storage, prefix: str, job_id: str) -> None:
    try:
        storage.delete_prefix(prefix)
    except StorageError as exc:
        log.warning("job %s: partial outputs under %s not deleted yet: %s", job_id, prefix, exc)


def _fail(settings: Settings, job_id: str, exc: BaseException) -> None:
    failure = failures.classify(exc)
    if failure is None:
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise exc  # worker shutdown: the job stays running; the reconciler re-queues it
        log.info("job %s stopped: no longer running (canceled or taken back)", job_id)
        return
    if not failure.bug:  # a bug's traceback is logged by classify, under its error id
        log.warning("job %s failed: %s", job_id, failure.message)
    with events.session_scope(settings) as session:
        if not transitions.try_transition(
            session=session, job_id=job_id, target=JobStatus.failed, error=failure.as_error()
        ):
            log.info("job %s ended before its failure could be stored", job_id)
