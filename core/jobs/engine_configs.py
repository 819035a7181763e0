"""Train-job configs per engine: the engines' own options classes (torch-free, declared
once in :mod:`models.engine_options`), so submit checks every option exactly as the
engine will. Values left out take the engine's defaults for the image size.

Also what ``GET /v1/engines`` answers: each engine with its train and sampling options
(type, default or the rule by image size, bounds, help), read from the same classes."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from core import catalog
from models import engine_options
from models.engine_options import CONFIGS, DDPMConfig, EBMConfig, GANConfig
from models.engine_options.base import MAX_TRAIN_WORK, TrainOptions

__all__ = [
    "CONFIGS",
    "MAX_TRAIN_WORK",
    "DDPMConfig",
    "EBMConfig",
    "EngineOut",
    "GANConfig",
    "TrainOptions",
    "engines",
]


class EngineOptionOut(BaseModel):
    name: str
    type: str = Field(description='"integer", "number or null", "one of \\"a\\", \\"b\\"", ...')
    default: Any = Field(description="null where the default depends on the image size")
    default_text: str = Field(description='the default as read: "500", "by image size: ..."')
    help: str
    range_text: str = Field(description='the bounds as read: "1 to 4,096", "> 0, ≤ 10"')
    min: float | None = None
    max: float | None = None
    exclusive_min: float | None = None
    exclusive_max: float | None = None
    multiple_of: int | None = None
    min_items: int | None = None
    max_items: int | None = None
    item_min: float | None = None
    item_max: float | None = None
    item_exclusive_min: float | None = None
    item_exclusive_max: float | None = None
    default_by_image_size: list[list[Any]] | None = Field(
        default=None,
        description="[[up_to_px, value], ...]: the first step whose size the image does "
        "not exceed (up_to null: any larger)",
    )
    default_by_option: dict[str, Any] | None = Field(
        default=None, description='{"option": "variant", "values": {"dcgan": 0.0002, ...}}'
    )
    choices: list[Any] | None = Field(default=None, description="the values it takes, if listed")


class EngineOut(BaseModel):
    name: str
    description: str
    image_sizes: list[int] = Field(description="the image sizes the engine trains at")
    options: list[EngineOptionOut] = Field(description="a train job's `config` keys")
    sample_options: list[EngineOptionOut] = Field(
        description="a generate job's or a preview's `config` keys (an evaluate job's "
        "`config.sample_config`): what a left-out one samples with is its default_text"
    )
    generate_options: list[str] = Field(description="the names of sample_options, sorted")


def engines() -> list[EngineOut]:
    out = []
    for name in catalog.ENGINES:
        described = engine_options.describe(name)
        names = sorted(option["name"] for option in described["sample_options"])
        out.append(EngineOut.model_validate({**described, "generate_options": names}))
    return out
