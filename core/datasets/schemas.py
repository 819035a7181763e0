"""Pydantic models at the REST edge of /v1/datasets."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from core import catalog
from core.datasets.orm import DatasetStatus
from core.jobs.schemas import JobError, Strict
from core.uploads import UploadOut

DatasetFormat = Literal["zip", "tar", "npz", "cifar", "parquet", "webdataset"]
FORMATS_HELP = (
    "zip or tar (plain, .gz, .bz2 or .xz): an ImageFolder, one folder per class holding "
    "its images (class_name/image.png; one enclosing folder is fine); npz: arrays images "
    "(uint8, (n, h, w), (n, h, w, c) or (n, c, h, w)), labels (integers) and optionally "
    "classes (names); cifar: CIFAR-10 binary batches (*.bin, records of one label byte and "
    "3072 bytes of 32x32 RGB) as one .bin or in a zip/tar, with batches.meta.txt naming "
    "the classes; parquet: a Parquet file (or a zip/tar of them) with an image column (the "
    "Hugging Face datasets Image feature, or bytes in a column named image) and a label "
    "(a ClassLabel, or a column named label); webdataset: a tar shard (or a zip/tar of .tar "
    "shards) of samples key.png with key.cls (the class number) and optionally key.json "
    "(its class_name). Every format has the same limits"
)


class DatasetCreate(Strict):
    """JSON types as JSON Schema has them, like job bodies (true is not 1, "5" not 5)."""

    name: str = Field(
        min_length=1,
        max_length=200,
        pattern=catalog.DATASET_NAME_PATTERN,
        description="unique among this tenant's datasets; jobs may name the dataset by it "
        '("dataset": "mnist100:train"). Not a built-in\'s name, no ":" or "/", not "ds_…"',
    )
    format: DatasetFormat = Field(description=FORMATS_HELP)
    size: int | None = Field(
        default=None,
        ge=1,
        description="the file's size in bytes: checked against the limit now, signed into "
        "the upload URL, and large files get a multipart upload",
    )
    test_fraction: float = Field(
        default=0.2,
        ge=0,
        le=0.9,
        description="share of each class held out as the test split (made once, stratified, "
        "seeded); 0 puts every image in train",
    )
    skip_corrupt: bool = Field(
        default=False,
        description="leave out (and list) images that cannot be decoded instead of refusing "
        "the dataset",
    )

    @field_validator("name")
    @classmethod
    def _not_a_builtin(cls, value: str) -> str:
        if value in catalog.DATASET_SPLITS:
            raise ValueError(
                f"{value!r} is a built-in dataset's name; a job naming it would get the "
                "built-in: choose another name"
            )
        if catalog.is_upload(value):
            raise ValueError('names starting "ds_" are kept for dataset ids: choose another')
        return value


class CorruptFile(BaseModel):
    file: str
    reason: str


class SplitOut(BaseModel):
    test_fraction: float
    seed: int
    train: dict[str, int]
    test: dict[str, int]


class DatasetOut(BaseModel):
    id: str
    name: str
    format: DatasetFormat
    status: DatasetStatus
    error: JobError | None
    size: int | None = Field(description="bytes received")
    sha256: str | None = Field(description="of the uploaded file: the content in lineage")
    classes: list[str] | None
    counts: dict[str, int] | None = Field(description="images per class")
    num_images: int | None
    image_shape: list[int] | None = Field(description="(c, h, w) of the stored images")
    original_sizes: dict[str, int] | None = Field(description='images per "WxH" as uploaded')
    resized: bool | None = Field(description="true when mixed sizes were made one")
    split: SplitOut | None
    corrupt: list[CorruptFile] | None = Field(description="files left out (skip_corrupt)")
    ignored: list[str] | None = Field(description="files skipped as not data (.DS_Store, …)")
    validation_job: str | None
    upload: UploadOut | None = Field(description="where to send the bytes (awaiting_upload)")
    urls: dict[str, str] = Field(
        description="get, complete; once ready, thumbnail (a PNG grid of some of its "
        "images; also under preview, its first name)"
    )
    created_at: datetime
    completed_at: datetime | None


class DatasetPage(BaseModel):
    items: list[DatasetOut]
    next_cursor: str | None


def summary_fields(summary: dict[str, Any] | None) -> dict[str, Any]:
    """The DatasetOut fields held in the row's ``summary`` (None before validation)."""
    keys = (
        "classes",
        "counts",
        "num_images",
        "image_shape",
        "original_sizes",
        "resized",
        "split",
        "corrupt",
        "ignored",
    )
    return {key: (summary or {}).get(key) for key in keys}
