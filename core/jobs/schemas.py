"""Pydantic models at the REST edge: job requests (a discriminated union on ``kind``,
unknown fields rejected) and the job object returned to users."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationInfo,
    field_validator,
    model_validator,
)

from core import catalog
from core.jobs.engine_configs import DDPMTrainConfig, EBMTrainConfig, GANTrainConfig
from core.jobs.numbers import JsonNumbers
from core.jobs.states import JobKind, JobStatus

MAX_COUNT = 1_000_000
MAX_SAMPLE_WORK = 200_000_000
"""Bound of count × sampling steps (network evaluations per image): a million images at
200 steps, so no single request asks for unbounded work. Steps left out count as 1000
(the DDPM sampler's default)."""
DEFAULT_EVALUATE_COUNT = 1000
MAX_GPUS = 64  # the bound of the schema; SYNTHGEN_MAX_JOB_GPUS is the deployment's own
MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
WebhookEvent = Literal["start", "progress", "output", "completed"]
WebhookFilter = Annotated[list[WebhookEvent], Field(min_length=1)]


class Strict(JsonNumbers):
    model_config = ConfigDict(extra="forbid", strict=True)


class _Webhooked(Strict):
    """A job body with ``webhook`` and ``webhook_events_filter`` (default start, completed)."""

    @field_validator("webhook_events_filter", check_fields=False)
    @classmethod
    def _filter_needs_webhook(cls, value: list[str] | None, info: ValidationInfo) -> object:
        # ``webhook`` is declared before the filter, so it is validated already.
        if value is not None and info.data.get("webhook") is None:
            raise ValueError("needs a webhook URL")
        return value


class _TrainBase(_Webhooked):
    kind: Literal["train"]
    dataset: str = Field(
        description='"digits" or "digits:train"',
        json_schema_extra={"pattern": catalog.dataset_ref_pattern()},
    )
    model_name: str = Field(pattern=MODEL_NAME_PATTERN)
    gpus: int = Field(
        default=1,
        ge=1,
        le=MAX_GPUS,
        description="GPUs to train on, data-parallel (each takes batch_size / gpus images "
        "of every step); at most what the operators' largest worker has",
    )
    webhook: AnyHttpUrl | None = None
    webhook_events_filter: WebhookFilter | None = None

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, value: str) -> str:
        catalog.parse_dataset_ref(value, default_split="train")
        return value


class TrainDDPM(_TrainBase):
    engine: Literal["ddpm"]
    config: DDPMTrainConfig = Field(default_factory=DDPMTrainConfig)


class TrainGAN(_TrainBase):
    engine: Literal["gan"]
    config: GANTrainConfig = Field(default_factory=GANTrainConfig)


class TrainEBM(_TrainBase):
    engine: Literal["ebm"]
    config: EBMTrainConfig = Field(default_factory=EBMTrainConfig)


TrainJobIn = Annotated[TrainDDPM | TrainGAN | TrainEBM, Field(discriminator="engine")]
TRAIN_TYPES = (TrainDDPM, TrainGAN, TrainEBM)


class SampleConfig(Strict):
    sampler: Literal["ddpm", "ddim"] | None = None
    steps: int | None = Field(default=None, ge=1, le=5000)
    guidance_scale: float | None = Field(default=None, ge=0, le=100)
    eta: float | None = Field(default=None, ge=0, le=1)
    step_size: float | None = Field(default=None, gt=0, le=1000)
    noise: float | None = Field(default=None, ge=0, le=10)

    def options(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


def check_sample_work(count: int, config: SampleConfig) -> None:
    work = count * (config.steps or 1000)
    if work > MAX_SAMPLE_WORK:
        raise ValueError(
            f"count × steps is {work:,}, over the limit of {MAX_SAMPLE_WORK:,}; "
            "lower count or steps, or split the job"
        )


class GenerateJobIn(_Webhooked):
    kind: Literal["generate"]
    model: str = Field(min_length=1, max_length=200)
    count: int = Field(ge=1, le=MAX_COUNT)
    labels: list[Annotated[int, Field(ge=0, le=100_000)]] | None = Field(
        default=None,
        max_length=MAX_COUNT,
        description="one class per image (length == count), or the classes to draw "
        "from evenly (shorter list); null draws all classes evenly",
    )
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    config: SampleConfig = Field(default_factory=SampleConfig)
    output_format: Literal["png", "npz", "imagefolder"] = "png"
    webhook: AnyHttpUrl | None = None
    webhook_events_filter: WebhookFilter | None = None

    @model_validator(mode="after")
    def _labels_fit_count(self) -> GenerateJobIn:
        if self.labels is not None and (len(self.labels) == 0 or len(self.labels) > self.count):
            raise ValueError("labels must be null, one class per image, or a non-empty class list")
        check_sample_work(self.count, self.config)
        return self


class EvaluateConfig(Strict):
    features: Literal["inception", "classifier"] = Field(
        default="inception",
        description='where fid, kid and precision_recall are computed: "inception" (the '
        "standard Inception-v3 features, reported as FID; needs SYNTHGEN_INCEPTION_WEIGHTS) "
        'or "classifier" (the reference dataset\'s own classifier, reported as FD)',
    )
    seeds: list[Annotated[int, Field(ge=0, le=2**31 - 1)]] = Field(
        default=[0, 1, 2], min_length=1, max_length=10
    )
    subset_sizes: list[Annotated[int, Field(ge=1, le=10_000)]] = Field(
        default=[5, 20, 100], min_length=1, max_length=10
    )
    classifier: Literal["cnn", "resnet18"] = "cnn"
    classifier_epochs: int | None = Field(default=None, ge=1, le=200)
    sample_config: SampleConfig = Field(
        default_factory=SampleConfig, description="sampling options (with model only)"
    )


class EvaluateJobIn(_Webhooked):
    kind: Literal["evaluate"]
    model: str | None = Field(default=None, min_length=1, max_length=200)
    source_job: str | None = Field(default=None, min_length=1, max_length=64)
    reference: str = Field(
        description='"name:split", e.g. "digits:test"',
        json_schema_extra={"pattern": catalog.dataset_ref_pattern()},
    )
    count: int | None = Field(
        default=None,
        ge=10,
        le=200_000,
        description="images to evaluate. With model: sampled now (default 1000). With "
        "source_job: the first count images of that job (default all of them; refused "
        "when it has fewer)",
    )
    metrics: list[
        Literal[
            "fid",
            "kid",
            "precision_recall",
            "inception_score",
            "class_coverage",
            "classifier_utility",
        ]
    ] = Field(default=["fid", "kid", "precision_recall"], min_length=1)
    seed: int = Field(default=0, ge=0, le=2**31 - 1, description="sampling seed (with model only)")
    config: EvaluateConfig = Field(default_factory=EvaluateConfig)
    webhook: AnyHttpUrl | None = None
    webhook_events_filter: WebhookFilter | None = None

    @field_validator("reference")
    @classmethod
    def _known_reference(cls, value: str) -> str:
        catalog.parse_dataset_ref(value, default_split="test")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> EvaluateJobIn:
        if (self.model is None) == (self.source_job is None):
            raise ValueError("give exactly one of model or source_job")
        if self.model is not None and self.count is None:
            self.count = DEFAULT_EVALUATE_COUNT
        check_sample_work(self.count or 0, self.config.sample_config)
        return self


JobIn = Annotated[TrainJobIn | GenerateJobIn | EvaluateJobIn, Field(discriminator="kind")]
AnyJobIn = TrainDDPM | TrainGAN | TrainEBM | GenerateJobIn | EvaluateJobIn
_job_adapter: TypeAdapter[AnyJobIn] = TypeAdapter(JobIn)


def parse_job(body: object) -> AnyJobIn:
    """Validate a job body as the API does (for the CLI, tests and tools)."""
    return _job_adapter.validate_python(body)


class Progress(BaseModel):
    step: int = 0
    total: int = 0
    fraction: float = 0.0
    eta_seconds: float | None = None
    stage: str | None = None
    metrics: dict[str, float] = Field(default_factory=dict)


class JobError(BaseModel):
    type: str
    message: str


class JobOut(BaseModel):
    id: str
    kind: JobKind
    status: JobStatus
    request: dict[str, Any]
    progress: Progress | None
    result: dict[str, Any] | None
    error: JobError | None
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    attempts: int = Field(description="runs started (a resumed or retried job counts each)")
    preemptions: int = Field(
        description="runs handed back on a worker's shutdown (not failures; they resume)"
    )
    urls: dict[str, str]


class JobPage(BaseModel):
    items: list[JobOut]
    next_cursor: str | None


class ArtifactOut(BaseModel):
    name: str
    size: int
    content_type: str
    url: str


class ArtifactPage(BaseModel):
    items: list[ArtifactOut]
    next_cursor: str | None


class ModelVersionOut(BaseModel):
    id: str
    name: str
    version: int
    aliases: list[str]
    engine: str
    dataset: str
    config: dict[str, Any]
    spec: dict[str, Any]
    metrics: dict[str, Any]
    checkpoint_uri: str
    train_job_id: str | None
    created_at: datetime


class ModelOut(BaseModel):
    name: str
    latest_version: ModelVersionOut
    versions: int
    aliases: dict[str, int] = Field(default_factory=dict, description="alias → version")
