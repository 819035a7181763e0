"""How long a job will take before it is submitted: its work (train steps, or generated
images × sampling steps) times the seconds per unit this tenant's finished jobs of the
same kind and engine measured on this service's workers. No earlier job, no estimate: a
guess from nothing would be a number that does not say what it measured."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import ModelNotFound
from core.jobs.orm import Job
from core.jobs.schemas import TRAIN_TYPES, AnyJobIn, GenerateJobIn
from core.jobs.states import JobKind, JobStatus
from core.model_versions import service as model_versions
from core.model_versions.orm import ModelVersion
from core.tenants.orm import Tenant
from models.engine_options.base import MAX_STEPS

MEASURED_JOBS = 5  # the newest finished jobs a rate is measured from
DEFAULT_SAMPLE_STEPS = 1000  # a generate job's steps when its config names none


@dataclass(frozen=True)
class Estimate:
    seconds: float | None
    basis: str
    """What the figure was measured from, or why there is none."""

    def to_dict(self) -> dict[str, Any]:
        return {"seconds": self.seconds, "basis": self.basis}


def estimate(*, session: Session, tenant: Tenant, job_in: AnyJobIn) -> Estimate:
    if isinstance(job_in, TRAIN_TYPES):
        steps = job_in.config.max_steps or MAX_STEPS
        rate = _rate(session, tenant, JobKind.train, job_in.engine, _train_units)
        if rate is None:
            return _unknown("train", job_in.engine)
        seconds = steps * rate.per_unit
        if job_in.config.max_seconds is not None:
            seconds = min(seconds, job_in.config.max_seconds)
        return Estimate(seconds, f"{steps:,} steps at {rate.text} s per step, {rate.source}")
    if isinstance(job_in, GenerateJobIn):
        engine = _engine_of(session, tenant, job_in.model)
        if engine is None:
            return Estimate(None, f"no model {job_in.model!r} to estimate from")
        units = job_in.count * (job_in.config.options().get("steps") or DEFAULT_SAMPLE_STEPS)
        rate = _rate(session, tenant, JobKind.generate, engine, _generate_units)
        if rate is None:
            return _unknown("generate", engine)
        return Estimate(
            units * rate.per_unit,
            f"{job_in.count:,} images × {units // job_in.count:,} sampling steps at "
            f"{rate.text} s per image-step, {rate.source}",
        )
    return Estimate(None, f"no estimate for {job_in.kind} jobs yet")


@dataclass(frozen=True)
class _Rate:
    per_unit: float
    jobs: int
    engine: str
    kind: str

    @property
    def text(self) -> str:
        return f"{self.per_unit:.3g}"

    @property
    def source(self) -> str:
        return f"measured on this tenant's last {self.jobs} {self.engine} {self.kind} job(s)"


def _unknown(kind: str, engine: str) -> Estimate:
    return Estimate(
        None, f"no finished {engine} {kind} job of this tenant to measure the speed from yet"
    )


def _train_units(job: Job) -> float:
    return float((job.progress or {}).get("step") or 0)


def _generate_units(job: Job) -> float:
    request = job.request
    steps = (request.get("config") or {}).get("steps") or DEFAULT_SAMPLE_STEPS
    return float(int(request.get("count") or 0) * int(steps))


def _rate(session: Session, tenant: Tenant, kind: JobKind, engine: str, units: Any) -> _Rate | None:
    """Seconds per unit of work over the newest finished jobs of this kind and engine."""
    query = (
        select(Job)
        .where(Job.tenant_id == tenant.id, Job.kind == kind, Job.status == JobStatus.succeeded)
        .order_by(Job.completed_at.desc())
        .limit(50)
    )
    seconds = work = 0.0
    jobs = 0
    for job in session.scalars(query):
        if jobs == MEASURED_JOBS:
            break
        if _job_engine(session, job) != engine or not (job.started_at and job.completed_at):
            continue
        done = units(job)
        if done <= 0:
            continue
        seconds += (job.completed_at - job.started_at).total_seconds()
        work += done
        jobs += 1
    return _Rate(seconds / work, jobs, engine, kind.value) if jobs else None


def _job_engine(session: Session, job: Job) -> str | None:
    if job.kind == JobKind.train:
        return str(job.request.get("engine"))
    version = session.get(ModelVersion, job.model_version_id) if job.model_version_id else None
    return version.engine if version is not None else None


def _engine_of(session: Session, tenant: Tenant, ref: str) -> str | None:
    try:
        return model_versions.resolve(session=session, tenant=tenant, ref=ref).engine
    except ModelNotFound:  # no estimate; submit refuses it, naming model
        return None
