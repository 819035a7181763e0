"""What the API answers, as the SDK hands it out: JSON objects, the statuses a job or a
preview ends in, a preview image. Below every other module of the SDK, importing none."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Json = dict[str, Any]
TERMINAL = {"succeeded", "failed", "canceled"}


@dataclass(frozen=True)
class PreviewImage:
    """A preview grid: the PNG, which model version drew it, and whether the worker had
    that model loaded already."""

    png: bytes
    model_version: str
    cache_hit: bool
    preview_id: str
