"""The preview request and the preview object (what a 202 answers and GET returns)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field

from core.jobs.schemas import SampleConfig, Strict

MAX_PREVIEW_IMAGES = 64
MAX_PREVIEW_SCALE = 16
AUTO_SHORT_SIDE = 256  # px: what scale "auto" brings the grid's short side up to


def _check_scale(value: Any) -> Any:
    # One error naming the field, instead of one per branch of the union below.
    if value == "auto" or (
        type(value) is int and 1 <= value <= MAX_PREVIEW_SCALE  # not True, not 2.0
    ):
        return value
    raise ValueError(f'a whole number 1 to {MAX_PREVIEW_SCALE}, or "auto"; got {json.dumps(value)}')


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
    scale: Annotated[
        Annotated[int, Field(ge=1, le=MAX_PREVIEW_SCALE)] | Literal["auto"],
        BeforeValidator(_check_scale),
    ] = Field(
        default=1,
        description="each pixel drawn as scale×scale pixels (nearest neighbour: the samples "
        'are not resampled); "auto": the smallest scale that makes the grid\'s short side '
        f"at least {AUTO_SHORT_SIDE} px (at most {MAX_PREVIEW_SCALE})",
    )
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
