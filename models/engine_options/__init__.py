"""Every engine's train options, declared once: type, bounds, default (fixed or by image
size) and help text per option, as the classes the engines run with (``DDPMConfig``, ...).

Torch-free (pydantic only), so ``core/`` validates job bodies with these very classes, the
OpenAPI schema and ``GET /v1/engines`` are generated from them, and the README's engine
table is too (``python -m models.engine_options --readme``). Adding an option is one
field here; adding an engine is one class and one line in ``CONFIGS``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from models.engine_options.base import BY_IMAGE_SIZE, BY_OPTION, TrainOptions, steps_text
from models.engine_options.ddpm import DDPMConfig
from models.engine_options.ebm import EBMConfig
from models.engine_options.gan import GANConfig

CONFIGS: dict[str, type[TrainOptions]] = {
    "ddpm": DDPMConfig,
    "gan": GANConfig,
    "ebm": EBMConfig,
}


def names() -> list[str]:
    return sorted(CONFIGS)


def describe(engine: str) -> dict[str, Any]:
    """``engine`` and its options as plain JSON: what ``GET /v1/engines`` answers."""
    cls = CONFIGS[engine]
    return {
        "name": engine,
        "description": " ".join((cls.__doc__ or "").split()),
        "image_sizes": list(cls.IMAGE_SIZES),
        "options": [_describe_option(cls, field) for field in dataclasses.fields(cls)],
    }


def _describe_option(cls: type[TrainOptions], field: dataclasses.Field[Any]) -> dict[str, Any]:
    info = cls.__pydantic_fields__[field.name]  # type: ignore[attr-defined]
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    default = info.get_default(call_default_factory=True)
    out: dict[str, Any] = {
        "name": field.name,
        "type": type_text(info.annotation),
        "default": default,
        "default_text": default_text(default, extra),
        "help": info.description or "",
        **bounds(info.metadata),
    }
    if BY_IMAGE_SIZE in extra:
        out["default_by_image_size"] = extra[BY_IMAGE_SIZE]
    if BY_OPTION in extra:
        out["default_by_option"] = extra[BY_OPTION]
    return out


def default_text(default: Any, extra: dict[str, Any]) -> str:
    """The default as a person reads it: a value, a rule by image size, or by an option."""
    if BY_IMAGE_SIZE in extra:
        return "by image size: " + steps_text(extra[BY_IMAGE_SIZE])
    if BY_OPTION in extra:
        rule = extra[BY_OPTION]
        values = ", ".join(f"{k} {_json_text(v)}" for k, v in rule["values"].items())
        return f"by {rule['option']}: {values}"
    return _json_text(default)


def _json_text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return "[" + ", ".join(_json_text(v) for v in value) + "]"
    return str(value)


_BOUND_NAMES = {"ge": "min", "gt": "exclusive_min", "le": "max", "lt": "exclusive_max"}


def bounds(metadata: list[Any], prefix: str = "") -> dict[str, Any]:
    """The pydantic constraints in ``metadata`` as ``{min, max, exclusive_min, ...}``."""
    out: dict[str, Any] = {}
    for item in metadata:
        for attr, name in (*_BOUND_NAMES.items(), ("multiple_of", "multiple_of"),
                           ("min_length", "min_items"), ("max_length", "max_items")):  # fmt: skip
            value = getattr(item, attr, None)
            if value is not None:
                out[prefix + name] = value
    return out


def type_text(annotation: Any) -> str:
    """``int | None`` → "integer or null", ``list[float]`` → "list of number", ..."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return type_text(args[0])
    if origin in (typing.Union, types.UnionType):
        return " or ".join(type_text(arg) for arg in args)
    if origin is typing.Literal:
        return "one of " + ", ".join(f'"{a}"' for a in args)
    if origin is list:
        return f"list of {type_text(args[0])}"
    names = {int: "integer", float: "number", bool: "boolean", str: "string"}
    return "null" if annotation is type(None) else names.get(annotation, str(annotation))


__all__ = ["CONFIGS", "DDPMConfig", "EBMConfig", "GANConfig", "TrainOptions", "describe"]
