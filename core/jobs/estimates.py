"""How long a job will take before it is submitted: its work (train steps, or generated
images × sampling steps) times the seconds per unit this tenant's finished jobs of the
same kind and engine measured on the same worker queue (``gpu``, or ``gpu.N`` for a train
job on N GPUs: core/queue.py), since a job on 4 GPUs runs at another speed than one on
one. No earlier job, no estimate: a guess from nothing would be a number that does not
say what it measured.

A train step's work is its pixels through the networks, batch size × image size², taken
from the options as the job will resolve them (the dataset's own size when ``image_size``
is left out; ebm's run length by size): a step at 32 px costs about four at 16 px, so a
rate measured on a small run is scaled, not reused as seconds per step. Where the size
cannot be known before the run (an upload of non-square images), seconds per step.

The queue is the worker class the service records: which device served it is not kept, so
a ``gpu`` queue served by CPU workers (Compose's ``worker-gpu-on-cpu``) is measured as it
runs, and a mix of GPU and CPU workers on one queue gives a mixed rate."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import catalog
from core.datasets import lookup as datasets
from core.datasets.orm import Dataset
from core.errors import ModelNotFound
from core.jobs.orm import Job
from core.jobs.schemas import TRAIN_TYPES, AnyJobIn, GenerateJobIn
from core.jobs.states import JobKind, JobStatus
from core.model_versions import service as model_versions
from core.model_versions.orm import ModelVersion
from core.queue import queue_for
from core.tenants.orm import Tenant
from models.engine_options.base import MAX_STEPS, TrainOptions

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
        queue = queue_for(JobKind.train, {"gpus": job_in.gpus})
        config = _resolved(session, tenant, job_in.config, job_in.dataset)
        # Without the size (the run's to find out), seconds per step; else per pixel.
        measure = _train_steps if config is None else _train_pixels
        rate = _rate(session, tenant, JobKind.train, job_in.engine, queue, measure)
        if rate is None:
            return _unknown("train", job_in.engine, queue)
        if config is None:
            steps = job_in.config.max_steps or MAX_STEPS
            step_s = rate.per_unit
            work = f"{steps:,} steps at {rate.text} s per step"
        else:
            steps = int(config.max_steps)
            size, batch = int(config.image_size or 0), int(getattr(config, "batch_size", 1))
            step_s = rate.per_unit * batch * size**2
            work = (
                f"{steps:,} steps of {batch} images at {size} px, {step_s:.3g} s per step "
                "(the measured seconds per pixel through the networks, scaled to this step)"
            )
        seconds = steps * step_s
        if job_in.config.max_seconds is not None:
            seconds = min(seconds, job_in.config.max_seconds)
        return Estimate(seconds, f"{work}, {rate.source}")
    if isinstance(job_in, GenerateJobIn):
        engine = _engine_of(session, tenant, job_in.model)
        if engine is None:
            return Estimate(None, f"no model {job_in.model!r} to estimate from")
        units = job_in.count * (job_in.config.options().get("steps") or DEFAULT_SAMPLE_STEPS)
        queue = queue_for(JobKind.generate, {})
        rate = _rate(session, tenant, JobKind.generate, engine, queue, _generate_units)
        if rate is None:
            return _unknown("generate", engine, queue)
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
    queue: str

    @property
    def text(self) -> str:
        return f"{self.per_unit:.3g}"

    @property
    def source(self) -> str:
        return (
            f"measured on this tenant's last {self.jobs} {self.engine} {self.kind} job(s) "
            f"on the {self.queue} queue's workers"
        )


def _unknown(kind: str, engine: str, queue: str) -> Estimate:
    return Estimate(
        None,
        f"no finished {engine} {kind} job of this tenant on the {queue} queue's workers to "
        "measure the speed from yet",
    )


def _resolved(
    session: Session, tenant: Tenant, config: TrainOptions, dataset: str
) -> TrainOptions | None:
    """The options as the run will resolve them, at the size it will train at; None when
    that size is not known before the run."""
    size = config.image_size or _native_size(session, tenant, dataset)
    if size is None:
        return None
    try:
        return config.resolved(size)
    except ValueError:  # a size the engine refuses: the run will say so, by name
        return None


def _native_size(session: Session, tenant: Tenant, ref: str) -> int | None:
    """The size a train job on dataset ``ref`` gets when its config names none, by the
    rule the worker applies (``datasets.default_image_size``)."""
    name = ref.partition(":")[0]
    row = None
    if catalog.is_upload(name):
        row = session.get(Dataset, name)
    elif name not in catalog.DEFAULT_IMAGE_SIZE:
        row = datasets.by_name(session=session, tenant_id=tenant.id, name=name)
    summary = row.summary if row is not None and row.tenant_id == tenant.id else None
    return datasets.default_image_size(name, summary)


def _train_steps(session: Session, job: Job) -> float:
    return float((job.progress or {}).get("step") or 0)


def _train_pixels(session: Session, job: Job) -> float:
    """Steps × batch size × image pixels of a finished train job, from the version it
    registered (its resolved config and image shape); 0 when it registered none."""
    version = session.scalar(select(ModelVersion).where(ModelVersion.train_job_id == job.id))
    if version is None:
        return 0.0
    shape = (version.spec or {}).get("image_shape") or [0, 0, 0]
    batch = int((version.config or {}).get("batch_size") or 0)
    return _train_steps(session, job) * batch * int(shape[-2]) * int(shape[-1])


def _generate_units(session: Session, job: Job) -> float:
    request = job.request
    steps = (request.get("config") or {}).get("steps") or DEFAULT_SAMPLE_STEPS
    return float(int(request.get("count") or 0) * int(steps))


def _rate(
    session: Session, tenant: Tenant, kind: JobKind, engine: str, queue: str, units: Any
) -> _Rate | None:
    """Seconds per unit of work over the newest finished jobs of this kind and engine that
    ran on ``queue`` (the queue a job ran on follows from its kind and request)."""
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
        if queue_for(kind, job.request) != queue or _job_engine(session, job) != engine:
            continue
        if not (job.started_at and job.completed_at):
            continue
        done = units(session, job)
        if done <= 0:
            continue
        seconds += (job.completed_at - job.started_at).total_seconds()
        work += done
        jobs += 1
    return _Rate(seconds / work, jobs, engine, kind.value, queue) if jobs else None


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
