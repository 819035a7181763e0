"""The preview request and the preview object (what a 202 answers and GET returns)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field

from core.jobs.schemas import SampleConfig, Strict

MAX_PREVIEW_IMAGES = 64


class PreviewIn(Strict):
    labels: list[Annotated[int, Field(ge=0)]] | None = Field(
        default=None,
        max_length=MAX_PREVIEW_IMAGES,
        description="the classes to show, one grid row each; null shows every class",
    )
    count: int | None = Field(
        default=None,
        ge=1,
        le=MAX_PREVIEW_IMAGES,
        description="images in the grid, spread evenly over the rows; default up to 8 a row",
    )
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    config: SampleConfig = Field(default_factory=SampleConfig)


class PreviewVersion(BaseModel):
    id: str
    name: str
    version: int


class PreviewOut(BaseModel):
    id: str
    status: str
    model_version: PreviewVersion
    request: dict[str, Any]
    error: dict[str, Any] | None
    cache_hit: bool | None
    created_at: datetime
    completed_at: datetime | None
    urls: dict[str, str]
