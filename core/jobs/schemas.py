"""Pydantic models at the REST edge: job requests (a discriminated union on ``kind``,
unknown fields rejected) and the job object returned to users."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal, get_args

from pydantic import (
    AnyHttpUrl,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationInfo,
    field_validator,
    model_validator,
)

from core import catalog

# The response models live in answers.py; re-exported so existing imports keep working.
from core.jobs.answers import ArtifactOut as ArtifactOut
from core.jobs.answers import ArtifactPage as ArtifactPage
from core.jobs.answers import JobError as JobError
from core.jobs.answers import JobOut as JobOut
from core.jobs.answers import JobPage as JobPage
from core.jobs.answers import ModelOut as ModelOut
from core.jobs.answers import ModelVersionOut as ModelVersionOut
from core.jobs.answers import Progress as Progress
from core.jobs.engine_configs import DDPMConfig, EBMConfig, GANConfig
from core.jobs.numbers import JsonNumbers
from models import engine_options
from models.engine_options import sampling
from models.engine_options.metrics import FeatureSpace, Metric

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
        description='"digits", "digits:train", or an uploaded dataset by its name '
        '("mnist100:train") or id ("ds_…:train"); a name is stored as the id it names',
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
        catalog.check_dataset_ref(value, default_split="train")
        return value


INIT_FROM_HELP = (
    'fine-tune: start from this model version\'s weights ("name:3", "name" for the latest, '
    "or a version id) of the same engine; config keys left out take the parent's values"
)


class TrainDDPM(_TrainBase):
    engine: Literal["ddpm"]
    config: DDPMConfig = Field(default_factory=DDPMConfig)
    init_from: str | None = Field(
        default=None, min_length=1, max_length=200, description=INIT_FROM_HELP
    )


class TrainGAN(_TrainBase):
    engine: Literal["gan"]
    config: GANConfig = Field(default_factory=GANConfig)
    init_from: str | None = Field(
        default=None, min_length=1, max_length=200, description=INIT_FROM_HELP
    )


class TrainEBM(_TrainBase):
    engine: Literal["ebm"]
    config: EBMConfig = Field(default_factory=EBMConfig)


TrainJobIn = Annotated[TrainDDPM | TrainGAN | TrainEBM, Field(discriminator="engine")]
TRAIN_TYPES = (TrainDDPM, TrainGAN, TrainEBM)


# A generate job's sampling options: every engine's (each declared once, in
# models/engine_options, beside its train options), since the engine is known only once the
# model is looked up; admission then holds them to the model's engine's own class.
if TYPE_CHECKING:
    from models.engine_options.sampling import SampleOptions as SampleConfig
else:
    SampleConfig = sampling.any_engine(
        engine_options.SAMPLING,
        "SampleConfig",
        doc="Sampling options, each of the engines named (GET /v1/engines lists them); one "
        "the model's engine does not take is refused at submit. Left out: see x-left-out.",
    )


def check_sample_work(count: int, config: SampleConfig) -> None:
    work = count * (config.options().get("steps") or 1000)
    if work > MAX_SAMPLE_WORK:
        raise ValueError(
            f"count × steps is {work:,}, over the limit of {MAX_SAMPLE_WORK:,}; "
            "lower count or steps, or split the job"
        )


OutputFormat = Annotated[
    Literal["png", "npz", "imagefolder", "parquet", "webdataset"],
    Field(
        description="png: images/000000.png and labels.csv; npz: images.npz (images, labels, "
        "class_names); imagefolder: images.zip as class_name/000000.png; parquet: Hugging Face "
        "datasets Parquet shards data/train-NNNNN.parquet (image, label as a ClassLabel, index, "
        "seed, model_version); webdataset: tar shards webdataset/train-NNNNNN.tar of "
        "{key}.png, {key}.cls, {key}.json. Every format also writes manifest.csv, grid.png, "
        "README.md (a dataset card) and croissant.json"
    ),
]


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
    output_format: OutputFormat = "png"
    webhook: AnyHttpUrl | None = None
    webhook_events_filter: WebhookFilter | None = None

    @model_validator(mode="after")
    def _labels_fit_count(self) -> GenerateJobIn:
        if self.labels is not None and (len(self.labels) == 0 or len(self.labels) > self.count):
            raise ValueError("labels must be null, one class per image, or a non-empty class list")
        check_sample_work(self.count, self.config)
        return self


class EvaluateConfig(Strict):
    features: Literal["auto", FeatureSpace] = Field(
        default="auto",
        description='where fid, kid and precision_recall are computed: "inception" (the '
        "standard Inception-v3 features, reported as FID; needs SYNTHGEN_INCEPTION_WEIGHTS), "
        '"classifier" (the reference dataset\'s own classifier, reported as FD) or "auto" '
        "(the default: inception when this server has its weights, else classifier). The "
        "job's request shows the space it ran in, and its report says how it was chosen",
    )
    features_auto: bool = Field(
        default=False,
        description='set by the service, never by a request: true when features was "auto" '
        "and the service chose the space",
        json_schema_extra={"readOnly": True},
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
    train_reference: str | None = Field(
        default=None,
        description='the model\'s training set, "name:split", for the privacy metrics '
        "(memorization, membership_inference) when the registry does not know it: an imported "
        "model, or source_job made by one. Held-out images come from the other split",
        json_schema_extra={"pattern": catalog.dataset_ref_pattern()},
    )

    @field_validator("train_reference")
    @classmethod
    def _known_train_reference(cls, value: str | None) -> str | None:
        if value is not None:
            catalog.check_dataset_ref(value, default_split="train")
        return value


class EvaluateJobIn(_Webhooked):
    kind: Literal["evaluate"]
    model: str | None = Field(default=None, min_length=1, max_length=200)
    source_job: str | None = Field(default=None, min_length=1, max_length=64)
    reference: str = Field(
        description='"name:split", e.g. "digits:test", or an uploaded dataset by its name '
        '("mnist100:test") or id ("ds_…:test"); a name is stored as the id it names',
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
    metrics: list[Metric] | None = Field(
        default=None,
        min_length=1,
        description="null: fid, kid and precision_recall, plus memorization and "
        "membership_inference when the model's training set is known (from its lineage, or "
        "config.train_reference); the job's request shows the list it ran",
    )
    seed: int = Field(default=0, ge=0, le=2**31 - 1, description="sampling seed (with model only)")
    config: EvaluateConfig = Field(default_factory=EvaluateConfig)
    webhook: AnyHttpUrl | None = None
    webhook_events_filter: WebhookFilter | None = None

    @field_validator("reference")
    @classmethod
    def _known_reference(cls, value: str) -> str:
        catalog.check_dataset_ref(value, default_split="test")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> EvaluateJobIn:
        if (self.model is None) == (self.source_job is None):
            raise ValueError("give exactly one of model or source_job")
        if self.model is not None and self.count is None:
            self.count = DEFAULT_EVALUATE_COUNT
        check_sample_work(self.count or 0, self.config.sample_config)
        return self


CLASS_NAME_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9 ._-]{0,98}[A-Za-z0-9])?$"
ClassName = Annotated[str, Field(pattern=CLASS_NAME_PATTERN)]
Prompt = Annotated[str, Field(min_length=1, max_length=1000)]
Scheduler = Literal[
    "ddim", "ddpm", "pndm", "lms", "euler", "euler_ancestral", "dpm_solver_multistep", "unipc"
]
SCHEDULERS: tuple[str, ...] = get_args(Scheduler)


class Txt2ImgJobIn(_Webhooked):
    """Make a labelled dataset from prompts with an imported diffusers pipeline."""

    kind: Literal["txt2img"]
    model: str = Field(min_length=1, max_length=200, description="an imported diffusers pipeline")
    prompts: dict[ClassName, list[Prompt]] = Field(
        min_length=1,
        max_length=1000,
        description="class name (the folder and label; labels follow this order) → its own "
        'prompts; "{class}" in a prompt is replaced by the class name',
    )
    templates: list[Prompt] = Field(
        default=[],
        max_length=100,
        description='prompts for every class, each holding "{class}" (e.g. "a photo of a '
        '{class}"); image i of a class uses its (own + template) prompts in turn',
    )
    negative_prompt: Prompt | None = None
    count_per_class: int = Field(ge=1, le=100_000)
    steps: int = Field(default=30, ge=1, le=1000)
    guidance_scale: float = Field(default=7.5, ge=0, le=50)
    scheduler: Scheduler | None = Field(
        default=None, description="null keeps the pipeline's own scheduler"
    )
    seed: int = Field(default=0, ge=0, le=2**31 - 1, description="image i gets seed + i")
    width: int | None = Field(default=None, ge=8, le=2048, description="null: the pipeline's")
    height: int | None = Field(default=None, ge=8, le=2048, description="null: the pipeline's")
    batch_size: int = Field(default=4, ge=1, le=64, description="images per forward pass")
    precision: Literal["auto", "fp32", "fp16", "bf16"] = Field(
        default="auto", description="auto: fp16 on a GPU; on a CPU every run is fp32"
    )
    attention_slicing: bool = Field(default=True, description="on a GPU: less memory, slower")
    output_format: OutputFormat = "imagefolder"
    webhook: AnyHttpUrl | None = None
    webhook_events_filter: WebhookFilter | None = None

    @model_validator(mode="after")
    def _prompts_for_every_class(self) -> Txt2ImgJobIn:
        for template in self.templates:
            if "{class}" not in template:
                raise ValueError(f'templates: {template!r} has no "{{class}}" placeholder')
        if not self.templates:
            empty = [name for name, own in self.prompts.items() if not own]
            if empty:
                raise ValueError(
                    f"prompts: class {empty[0]!r} has no prompt and there are no templates"
                )
        if self.negative_prompt is not None and self.guidance_scale <= 1:
            raise ValueError(
                "negative_prompt: applies only with classifier-free guidance; set "
                "guidance_scale above 1 or leave negative_prompt out"
            )
        if len(self.prompts) * self.count_per_class > MAX_COUNT:
            raise ValueError(f"count_per_class: at most {MAX_COUNT} images in all")
        return self

    def prompts_of(self, class_name: str) -> list[str]:
        """The class's prompts, own then templates, with {class} filled in."""
        own = self.prompts[class_name] + self.templates
        return [p.replace("{class}", class_name) for p in own]


JobIn = Annotated[
    TrainJobIn | GenerateJobIn | EvaluateJobIn | Txt2ImgJobIn, Field(discriminator="kind")
]
AnyJobIn = TrainDDPM | TrainGAN | TrainEBM | GenerateJobIn | EvaluateJobIn | Txt2ImgJobIn
_job_adapter: TypeAdapter[AnyJobIn] = TypeAdapter(JobIn)


def parse_job(body: object) -> AnyJobIn:
    """Validate a job body as the API does (for the CLI, tests and tools)."""
    return _job_adapter.validate_python(body)
