"""Pydantic models at the REST edge of /v1/imports."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from core.imports.orm import ImportStatus
from core.jobs.schemas import MODEL_NAME_PATTERN, JobError, Strict
from core.uploads import UploadOut

ImportFormat = Literal["diffusers", "synthgen"]
S3_URL_PATTERN = r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$"


class ImportCreate(Strict):
    """JSON types as JSON Schema has them, like job bodies (true is not 1, "5" not 5)."""

    model_name: str = Field(pattern=MODEL_NAME_PATTERN)
    format: ImportFormat = Field(
        description="diffusers: a text-to-image pipeline directory as save_pretrained wrote "
        "it (model_index.json and its components, safetensors weights); synthgen: one of "
        "this service's engine checkpoints (config.json and model.safetensors)"
    )
    source: str | None = Field(
        default=None,
        pattern=S3_URL_PATTERN,
        description="s3://bucket/prefix/ of the directory (or of a .zip/.tar archive of it) "
        "to import, under a prefix the operator allows; leave out to upload an archive",
    )
    size: int | None = Field(default=None, ge=1, description="the archive's size in bytes")


class ModelVersionRef(BaseModel):
    id: str
    name: str
    version: int


class ImportOut(BaseModel):
    id: str
    model_name: str
    format: ImportFormat
    source: str | None
    status: ImportStatus
    error: JobError | None
    size: int | None
    job: str | None
    model_version: ModelVersionRef | None
    upload: UploadOut | None
    urls: dict[str, str]
    created_at: datetime
    completed_at: datetime | None


class ImportPage(BaseModel):
    items: list[ImportOut]
    next_cursor: str | None = Field(description="the next page's cursor; null on the last page")
