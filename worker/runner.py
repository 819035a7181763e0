"""The job logic behind the ``run_job`` task: plain Python, testable without a broker.

1. claim the job with a compare-and-set ``queued → running`` (a redelivered message finds
   it running or finished and does nothing);
2. run the kind's handler with progress, cancel checks and a heartbeat;
3. the handler writes artifacts to storage first, then records them and moves the job to
   ``succeeded`` in one transaction (a job is never succeeded with an artifact missing);
4. any failure becomes ``error {type, message}`` in words the user can act on.
"""

from __future__ import annotations

import importlib
import logging
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.config import Settings
from core.db import session_scope
from core.errors import StorageError, SynthgenError
from core.jobs import service as jobs
from core.jobs.orm import Job
from core.jobs.states import JobKind, JobStatus
from core.storage import Storage, StoredObject
from core.storage import from_settings as storage_from_settings
from worker.progress import CancelCheck, Heartbeat, JobProgress

log = logging.getLogger("synthgen.worker")


@dataclass
class JobContext:
    settings: Settings
    storage: Storage
    job: Job
    workdir: Path
    progress: JobProgress
    should_stop: CancelCheck

    @property
    def prefix(self) -> str:
        return f"jobs/{self.job.id}"


Handler = Callable[[JobContext], None]


HANDLERS: dict[JobKind, str] = {
    JobKind.train: "worker.train",
    JobKind.generate: "worker.generate",
    JobKind.evaluate: "worker.evaluate",
    JobKind.txt2img: "worker.txt2img",
    JobKind.validate_dataset: "worker.datasets.validate",
    JobKind.import_model: "worker.model_import",
}
"""The module whose ``run(ctx)`` handles each job kind."""


def handler_for(kind: JobKind) -> Handler:
    # Imported on use, so importing the runner (e.g. for the reconciler) does not load torch.
    module = importlib.import_module(HANDLERS[kind])
    return module.run  # type: ignore[no-any-return]


def claim(settings: Settings, job_id: str) -> Job | None:
    """queued → running, or None when another delivery already took (or ended) the job."""
    with session_scope(settings.database_url) as session:
        job = session.get(Job, job_id)
        if job is None or job.status != JobStatus.queued:
            return None
        if not jobs.try_transition(
            session=session, job_id=job_id, target=JobStatus.running, attempts=job.attempts + 1
        ):
            return None
        session.refresh(job)
        session.expunge(job)
        return job


def run_job(job_id: str, *, settings: Settings, storage: Storage | None = None) -> str:
    """Run one job to a terminal state; returns the status it ended in (or "skipped")."""
    job = claim(settings, job_id)
    if job is None:
        log.info("job %s not claimable (already taken or finished); skipping", job_id)
        return "skipped"
    storage = storage or storage_from_settings(settings)
    settings.work_dir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=f"job-{job_id[:8]}-", dir=settings.work_dir))
    progress = JobProgress(settings.database_url, job_id, stage=str(job.kind))
    ctx = JobContext(
        settings, storage, job, workdir, progress, CancelCheck(settings.database_url, job_id)
    )
    try:
        with Heartbeat(settings.database_url, job_id, settings.heartbeat_interval_s):
            handler_for(JobKind(job.kind))(ctx)
    except BaseException as exc:  # noqa: BLE001 - every failure must end the job
        _fail(settings, job_id, exc)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    with session_scope(settings.database_url) as session:
        status = jobs.status_of(session=session, job_id=job_id)
    return str(status)


def _fail(settings: Settings, job_id: str, exc: BaseException) -> None:
    from models.engines.base import EngineError, Stopped

    if isinstance(exc, Stopped):
        log.info("job %s stopped: no longer running (canceled or taken back)", job_id)
        return
    if isinstance(exc, EngineError | SynthgenError | StorageError | ValueError):
        error = {"type": type(exc).__name__, "message": str(exc)}
        log.warning("job %s failed: %s", job_id, error["message"])
    elif isinstance(exc, MemoryError):
        error = {
            "type": "OutOfMemory",
            "message": "the worker ran out of memory; lower "
            "batch_size or image_size, or use a larger worker",
        }
    elif isinstance(exc, KeyboardInterrupt | SystemExit):
        # Worker shutdown: leave the job running; the reconciler re-queues it.
        raise exc
    else:
        log.exception("job %s failed unexpectedly", job_id, exc_info=exc)
        error = {
            "type": "InternalError",
            "message": f"the worker hit an unexpected error ({type(exc).__name__}: {exc}); "
            "it was logged for the operators",
        }
    with session_scope(settings.database_url) as session:
        if not jobs.try_transition(
            session=session, job_id=job_id, target=JobStatus.failed, error=error
        ):
            log.info("job %s ended before its failure could be stored", job_id)


def finish(
    ctx: JobContext,
    *,
    result: dict[str, object],
    objects: list[tuple[str, StoredObject]],
    register: Callable[..., dict[str, object]] | None = None,
) -> None:
    """Record artifacts (already in storage), run ``register`` (e.g. add a model version)
    and mark the job succeeded, all in one transaction: a job canceled meanwhile keeps its
    artifacts in storage but records nothing and registers nothing."""
    from core.artifacts import service as artifacts

    with session_scope(ctx.settings.database_url) as session:
        artifacts.record(session=session, job_id=ctx.job.id, objects=objects)
        if register is not None:
            result = {**result, **register(session)}
        if not jobs.try_transition(
            session=session,
            job_id=ctx.job.id,
            target=JobStatus.succeeded,
            result=result,
            progress={**(ctx.progress.last or {}), "fraction": 1.0, "eta_seconds": 0.0},
        ):
            session.rollback()
            log.info("job %s was canceled before it could succeed", ctx.job.id)
