"""Submit-time checks of a job body against the registry, the tenant's jobs and the
settings: what pydantic cannot know. Anything the job could not honour is refused here,
with a 422 naming the field, before a row is written."""

from __future__ import annotations

from typing import Any, cast

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import catalog
from core.config import Settings
from core.errors import InvalidRequest
from core.jobs import sources
from core.jobs.orm import Job
from core.jobs.schemas import (
    TRAIN_TYPES,
    AnyJobIn,
    EvaluateJobIn,
    GenerateJobIn,
    TrainDDPM,
    TrainEBM,
    TrainGAN,
    Txt2ImgJobIn,
)
from core.jobs.states import JobKind, JobStatus
from core.model_versions import service as model_versions
from core.model_versions.orm import ModelVersion
from core.tenants.orm import Tenant
from models import engine_options
from models.engine_options import sampling
from models.engine_options.metrics import Metric

INCEPTION_FILE = "pytorch-fid's pt_inception-2015-12-05-6726825d.pth"
MIN_EVALUATE_COUNT = 10
DEFAULT_BATCH_MULTIPLE = 32
"""Every engine's default batch_size, at every image size, is a multiple of this
(tests/unit/core/test_gpus.py checks it against the engines)."""


def check(*, session: Session, tenant: Tenant, job_in: AnyJobIn, settings: Settings) -> str | None:
    """Raise InvalidRequest / ModelNotFound for what the job could not do; returns the id
    of the model version it runs on (for a train job, the one it is fine-tuned from)."""
    sources.resolve_datasets(session=session, tenant=tenant, job_in=job_in)
    if isinstance(job_in, TRAIN_TYPES):
        _check_gpus(job_in, settings)
        return sources.check_train(session=session, tenant=tenant, job_in=job_in)
    if isinstance(job_in, Txt2ImgJobIn):
        return sources.check_txt2img(session=session, tenant=tenant, job_in=job_in)
    if isinstance(job_in, GenerateJobIn):
        version = sources.engine_version(session=session, tenant=tenant, ref=job_in.model)
        check_labels(job_in.labels, version.spec, version.name)
        check_sample_options(job_in.config.options(), version.engine, "config")
        return version.id
    assert isinstance(job_in, EvaluateJobIn)  # noqa: S101 - the union's last member
    sources.check_reference(session=session, tenant=tenant, ref=job_in.reference)
    if job_in.source_job is not None:
        version_id = _check_source_job(session=session, tenant=tenant, job_in=job_in)
    else:
        assert job_in.model is not None  # noqa: S101 - guaranteed by EvaluateJobIn's validator
        version = sources.engine_version(session=session, tenant=tenant, ref=job_in.model)
        check_sample_options(
            job_in.config.sample_config.options(), version.engine, "config.sample_config"
        )
        version_id = version.id
    _resolve_metrics(session=session, tenant=tenant, job_in=job_in, version_id=version_id)
    _check_features(job_in, settings)
    return version_id


def _resolve_metrics(
    *, session: Session, tenant: Tenant, job_in: EvaluateJobIn, version_id: str | None
) -> None:
    """Fill a left-out ``metrics`` (the privacy metrics join the default when the model's
    training set is known and can be audited) and refuse privacy metrics nobody can
    compute: without a training set there are no members to audit against."""
    version = session.get(ModelVersion, version_id) if version_id is not None else None
    known = model_versions.training_set(version)
    given = job_in.config.train_reference
    if given is not None:
        if version is not None and known is not None and given != known:
            raise InvalidRequest(
                f"config.train_reference: model {version.name}:{version.version} was "
                f"trained on {known} (its lineage says so); leave train_reference out",
                field="config.train_reference",
            )
        name, split = catalog.parse_dataset_ref(given, default_split="train")
        if catalog.is_upload(name):
            sources.check_reference(session=session, tenant=tenant, ref=f"{name}:{split}")
        known = f"{name}:{split}"
    blocker: str | None
    if known is None:
        blocker = (
            f"model {version.name}:{version.version} is imported, so its training set is "
            'unknown: set config.train_reference to the dataset it was trained on ("name:split")'
            if version is not None
            else "the source job has no model, so there is no training set to audit against"
        )
    else:
        blocker = sources.audit_blocker(session=session, tenant_id=tenant.id, train_ref=known)
    if job_in.metrics is None:
        names = catalog.DEFAULT_METRICS + (catalog.PRIVACY_METRICS if blocker is None else ())
        job_in.metrics = [cast(Metric, name) for name in names]
        return
    asked = [m for m in job_in.metrics if m in catalog.PRIVACY_METRICS]
    if asked and blocker is not None:
        raise InvalidRequest(
            f"metrics: {', '.join(asked)} compare the images with the model's training set, "
            f"and {blocker}; or leave these metrics out",
            field="metrics",
        )


def _check_gpus(job_in: TrainDDPM | TrainGAN | TrainEBM, settings: Settings) -> None:
    """A multi-GPU train job must be one some worker could take (``gpu.N`` is consumed
    only by workers with N GPUs: a job no worker takes would stay queued forever), of an
    engine that trains data-parallel, with a batch that splits evenly over the GPUs, not
    private, and not scored (keep-best runs in one process)."""
    gpus = job_in.gpus
    if gpus == 1:
        return
    if job_in.config.privacy is not None:
        raise InvalidRequest(
            "gpus: a private run (config.privacy) trains on one GPU: its per-example "
            "clipping and Poisson batches are one process's; send gpus: 1",
            field="gpus",
        )
    for option in ("eval_every", "keep", "early_stop_patience"):
        value = getattr(job_in.config, option)
        if value is not None and not (option == "eval_every" and value == 0) and value != "last":
            # Held-out scoring runs in one process; data-parallel runs keep their last weights.
            raise InvalidRequest(
                f"config.{option}: a data-parallel run (gpus > 1) is not scored on held-out "
                "images and keeps its last weights; leave it out, or send gpus: 1",
                field=f"config.{option}",
            )
    if gpus > settings.max_job_gpus:
        raise InvalidRequest(
            f"gpus: {gpus} GPUs asked, and this service's workers have at most "
            f"{settings.max_job_gpus} (SYNTHGEN_MAX_JOB_GPUS); ask for at most that many",
            field="gpus",
        )
    if job_in.engine not in catalog.DATA_PARALLEL_ENGINES:
        raise InvalidRequest(
            f"gpus: engine {job_in.engine!r} trains on one GPU (its replay buffer of "
            "Langevin samples is not shared across GPUs); send gpus: 1, or use engine "
            + " or ".join(repr(e) for e in catalog.DATA_PARALLEL_ENGINES),
            field="gpus",
        )
    batch_size = job_in.config.batch_size
    if batch_size is None and DEFAULT_BATCH_MULTIPLE % gpus:
        raise InvalidRequest(
            f"gpus: the default batch_size does not split evenly over {gpus} GPUs; set "
            f"config.batch_size to a multiple of {gpus}",
            field="gpus",
        )
    if batch_size is not None and batch_size % gpus:
        raise InvalidRequest(
            f"gpus: config.batch_size {batch_size} does not split evenly over {gpus} GPUs; "
            f"use a multiple of {gpus}",
            field="gpus",
        )


def has_inception_weights(settings: Settings) -> bool:
    return settings.inception_weights is not None and settings.inception_weights.is_file()


def _resolve_features(job_in: EvaluateJobIn, settings: Settings) -> None:
    """Turn ``features: "auto"`` into the space the job will run in (Inception-v3 when
    its weights are on disk, else the reference dataset's classifier), and mark it so the
    report says the service chose it: the stored request is what the job runs."""
    config = job_in.config
    if "features_auto" in config.model_fields_set:
        raise InvalidRequest(
            "config.features_auto is set by the service (it says whether features was "
            'chosen by "auto"); leave it out, and send config.features',
            field="config.features_auto",
        )
    if config.features == "auto":
        config.features = "inception" if has_inception_weights(settings) else "classifier"
        config.features_auto = True


def _check_features(job_in: EvaluateJobIn, settings: Settings) -> None:
    """Metrics in Inception-v3 features need its weights on disk: refuse rather than
    compute something else under the same name."""
    _resolve_features(job_in, settings)
    if has_inception_weights(settings):
        return
    assert job_in.metrics is not None  # noqa: S101 - resolved by _resolve_metrics
    if "inception_score" in job_in.metrics:
        raise InvalidRequest(
            "metrics: inception_score needs Inception-v3 weights; set "
            f"SYNTHGEN_INCEPTION_WEIGHTS to {INCEPTION_FILE}",
            field="metrics",
        )
    distances = [m for m in job_in.metrics if m in catalog.SPACE_METRICS]
    if job_in.config.features == "inception" and distances:
        raise InvalidRequest(
            f"metrics: {', '.join(distances)} in Inception-v3 features (config.features "
            f'"inception") need Inception-v3 weights, and this server has '
            f"none: set SYNTHGEN_INCEPTION_WEIGHTS to {INCEPTION_FILE}, or send "
            'config.features: "classifier" to compute them in the reference dataset\'s '
            "classifier features (reported as FD, not FID)",
            field="metrics",
        )


def _check_source_job(*, session: Session, tenant: Tenant, job_in: EvaluateJobIn) -> str | None:
    source = session.scalar(
        select(Job).where(Job.id == job_in.source_job, Job.tenant_id == tenant.id)
    )
    if (
        source is None
        or source.kind not in (JobKind.generate, JobKind.txt2img)
        or source.status != JobStatus.succeeded
    ):
        raise InvalidRequest(
            "source_job must be the id of a succeeded generate or txt2img job of this tenant",
            field="source_job",
        )
    if source.kind == JobKind.txt2img:
        sources.check_classes_in_reference(
            session=session, tenant=tenant, source=source, ref=job_in.reference
        )
    # The images exist already: sampling options would be silently ignored.
    if job_in.config.sample_config.options():
        raise InvalidRequest(
            "config.sample_config: the images of source_job are already made; sampling "
            "options apply only with model",
            field="config.sample_config",
        )
    if "seed" in job_in.model_fields_set:
        raise InvalidRequest(
            "seed: the images of source_job are already made; seed applies only with model "
            "(config.seeds sets the metrics' own draws)",
            field="seed",
        )
    available = int((source.result or {}).get("count", 0))
    if job_in.count is not None and job_in.count > available:
        raise InvalidRequest(
            f"count: source job {source.id} has {available} images, fewer than the {job_in.count} "
            "asked; ask for at most that many, or leave count out to use them all",
            field="count",
        )
    if job_in.count is None and available < MIN_EVALUATE_COUNT:
        raise InvalidRequest(
            f"source_job: job {source.id} has {available} images; evaluate needs at least "
            f"{MIN_EVALUATE_COUNT}",
            field="source_job",
        )
    return source.model_version_id


def check_labels(labels: list[int] | None, spec: dict[str, Any], name: str) -> None:
    if labels is None:
        return
    num_classes = int(spec.get("num_classes", 0))
    if not spec.get("conditional", True):
        raise InvalidRequest(
            f"labels: model {name!r} is unconditional; send labels: null", field="labels"
        )
    bad = [label for label in labels if label >= num_classes]
    if bad:
        raise InvalidRequest(
            f"labels: {bad[0]} is not a class of model {name!r} (it has {num_classes} "
            f"classes, 0..{num_classes - 1})",
            field="labels",
        )


def check_sample_options(options: dict[str, Any], engine: str, where: str) -> None:
    """Hold a request's sampling options to the model's engine's own class (the request
    schema took every engine's): an option of another engine, or a value this engine's
    class refuses, is a 422 naming the field."""
    cls = engine_options.SAMPLING[engine]
    valid = sorted(sampling.names(cls))
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise InvalidRequest(
            f"{where}.{unknown[0]} is not a sampling option of engine {engine!r}; options: "
            + ", ".join(valid),
            field=f"{where}.{unknown[0]}",
        )
    try:
        cls(**options)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join([where, *(str(part) for part in error["loc"])])
        reason = str(error["msg"]).removeprefix("Value error, ")
        raise InvalidRequest(f"{field}: {reason}", field=field) from None
