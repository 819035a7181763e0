"""Submit-time checks of where a job's data and weights come from: uploaded datasets
(``ds_…``), imported diffusers pipelines and the parent of a fine-tuning (``init_from``).
Part of admission (core/jobs/admission.py): each refusal is a 404/422 naming the field."""

from __future__ import annotations

from sqlalchemy.orm import Session

from core import catalog
from core.datasets import lookup as datasets
from core.errors import InvalidRequest
from core.jobs.orm import Job
from core.jobs.schemas import (
    TRAIN_TYPES,
    AnyJobIn,
    EvaluateJobIn,
    TrainDDPM,
    TrainEBM,
    TrainGAN,
    Txt2ImgJobIn,
)
from core.model_versions import service as model_versions
from core.model_versions.orm import ModelVersion
from core.tenants.orm import Tenant


def resolve_datasets(*, session: Session, tenant: Tenant, job_in: AnyJobIn) -> None:
    """Replace uploaded datasets' names in the job (train ``dataset``, evaluate
    ``reference`` and ``config.train_reference``) by their ids: the stored request reads
    the same data whatever is named so later."""

    def resolve(ref: str, default_split: str, field: str) -> str:
        if not catalog.is_dataset_name(ref.partition(":")[0]):
            return ref  # a built-in or an id: nothing to look up
        return datasets.resolve_ref(
            session=session, tenant_id=tenant.id, ref=ref, default_split=default_split, field=field
        )

    if isinstance(job_in, TRAIN_TYPES):
        job_in.dataset = resolve(job_in.dataset, "train", "dataset")
    elif isinstance(job_in, EvaluateJobIn):
        job_in.reference = resolve(job_in.reference, "test", "reference")
        given = job_in.config.train_reference
        if given is not None:
            job_in.config.train_reference = resolve(given, "train", "config.train_reference")


def check_train(
    *, session: Session, tenant: Tenant, job_in: TrainDDPM | TrainGAN | TrainEBM
) -> str | None:
    """An uploaded dataset must be ready (with images in the split asked); ``init_from``
    must name a model of the same engine. Returns the parent version's id, if any."""
    name, split = catalog.parse_dataset_ref(job_in.dataset, default_split="train")
    if catalog.is_upload(name):
        _ready_split(session, tenant, name, split, "dataset")
    init_from = getattr(job_in, "init_from", None)
    if init_from is None:
        return None
    parent = model_versions.resolve(
        session=session, tenant=tenant, ref=init_from, field="init_from"
    )
    if parent.engine != job_in.engine:
        raise InvalidRequest(
            f"init_from: model {parent.name}:{parent.version} is a {parent.engine} model; a "
            f"{job_in.engine} job can start only from a {job_in.engine} model",
            field="init_from",
        )
    _check_private_parent(job_in, parent, name)
    return parent.id


def _check_private_parent(
    job_in: TrainDDPM | TrainGAN | TrainEBM, parent: ModelVersion, dataset: str
) -> None:
    """A private run cannot start from weights that learnt its data without privacy: the
    parent already holds what the noise is there to hide."""
    if job_in.config.privacy is None or (parent.config or {}).get("privacy") is not None:
        return
    parent_dataset, _ = catalog.parse_dataset_ref(parent.dataset, default_split="train")
    if parent_dataset == dataset:
        raise InvalidRequest(
            f"init_from: model {parent.name}:{parent.version} was trained on {dataset} "
            "without privacy, so a private run on the same data cannot start from it (its "
            "weights already hold that data); start from a model trained privately or on "
            "other data, or leave init_from out",
            field="init_from",
        )


def check_reference(*, session: Session, tenant: Tenant, ref: str) -> None:
    """An uploaded reference must be ready, with images in both splits: the reference
    classifier trains on its train split and is scored on its test split."""
    name, _ = catalog.parse_dataset_ref(ref, default_split="test")
    if not catalog.is_upload(name):
        return
    for split in catalog.UPLOAD_SPLITS:
        _ready_split(session, tenant, name, split, "reference")


def _ready_split(session: Session, tenant: Tenant, name: str, split: str, field: str) -> None:
    row = datasets.require_ready(session=session, tenant_id=tenant.id, dataset_id=name, field=field)
    if datasets.split_count(row, split) == 0:
        raise InvalidRequest(
            f"{field}: dataset {name} has no images in its {split} split (it was made with "
            f"test_fraction {row.test_fraction}); upload it again with a test_fraction that "
            f"leaves images in both splits",
            field=field,
        )


def engine_version(*, session: Session, tenant: Tenant, ref: str) -> ModelVersion:
    """A model version one of our engines samples (generate, evaluate with model)."""
    version = model_versions.resolve(session=session, tenant=tenant, ref=ref)
    if version.engine not in catalog.ENGINES:
        raise InvalidRequest(
            f"model: {version.name}:{version.version} is an imported {version.engine} "
            "pipeline; make images with it in a txt2img job (and evaluate that job with "
            "source_job)",
            field="model",
        )
    return version


def check_txt2img(*, session: Session, tenant: Tenant, job_in: Txt2ImgJobIn) -> str:
    version = model_versions.resolve(session=session, tenant=tenant, ref=job_in.model)
    if version.engine != catalog.PIPELINE_ENGINE:
        raise InvalidRequest(
            f"model: {version.name}:{version.version} is a {version.engine} model; txt2img "
            "needs a diffusers text-to-image pipeline (import one with POST /v1/imports)",
            field="model",
        )
    factor = int(version.spec.get("vae_scale_factor", 8))
    for field in ("width", "height"):
        value = getattr(job_in, field)
        if value is not None and value % factor:
            raise InvalidRequest(
                f"{field}: {value} is not a multiple of {factor}, which this pipeline's "
                f"autoencoder needs (e.g. {value - value % factor or factor})",
                field=field,
            )
    return version.id


def check_classes_in_reference(*, session: Session, tenant: Tenant, source: Job, ref: str) -> None:
    """A txt2img job's classes are matched to an uploaded reference's by name: every one
    must be a class of the reference, whose images must be RGB like the job's."""
    name, _ = catalog.parse_dataset_ref(ref, default_split="test")
    if not catalog.is_upload(name):
        return
    row = datasets.require_ready(
        session=session, tenant_id=tenant.id, dataset_id=name, field="reference"
    )
    channels = ((row.summary or {}).get("image_shape") or [3])[0]
    if channels != 3:
        raise InvalidRequest(
            f"reference: dataset {name} is grayscale and a txt2img job's images are RGB; "
            "evaluate against an RGB dataset",
            field="reference",
        )
    known = set((row.summary or {}).get("classes") or [])
    missing = [c for c in (source.result or {}).get("class_names", []) if c not in known]
    if missing:
        raise InvalidRequest(
            f"reference: dataset {name} has no class {missing[0]!r} (its classes: "
            f"{', '.join(sorted(known))}); a txt2img job's classes are matched to the "
            "reference's by name",
            field="reference",
        )


def audit_blocker(*, session: Session, tenant_id: str, train_ref: str) -> str | None:
    """Why an evaluate's privacy audit cannot run against the training set ``train_ref``
    ("name:split"), or None when it can. A built-in always can; an uploaded one must still
    be this tenant's and ready, with images in the other split to hold out."""
    name, split = catalog.parse_dataset_ref(train_ref, default_split="train")
    if not catalog.is_upload(name):
        return None
    row = datasets.find_ready(session=session, tenant_id=tenant_id, dataset_id=name)
    if row is None:
        return f"the training set {name} is no longer available (deleted, or not ready)"
    held_out = catalog.held_out_split(split)
    if datasets.split_count(row, held_out) == 0:
        return (
            f"the training set {name} has no images in its {held_out} split to hold out "
            f"(it was uploaded with test_fraction {row.test_fraction})"
        )
    return None
