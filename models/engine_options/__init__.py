"""Every engine's train and sampling options, declared once: type, bounds, default (fixed,
by image size, or what a left-out value samples with) and help text per option, as the
classes the engines run with (``DDPMConfig``, ``DDPMSampleOptions``, ...); beside them the
built-in datasets (:mod:`.datasets`) and the metrics (:mod:`.metrics`).

Torch-free (pydantic only), so ``core/`` validates job bodies with these very classes, the
OpenAPI schema and ``GET /v1/engines`` are generated from them, and the README's engine
tables are too (``python -m models.engine_options --readme``). Adding an option is one
field here; adding an engine is two classes and a line in ``CONFIGS`` and ``SAMPLING``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from models.engine_options.base import (
    BY_IMAGE_SIZE,
    BY_OPTION,
    PrivacyOptions,
    TrainOptions,
    steps_text,
)
from models.engine_options.ddpm import DDPMConfig, DDPMSampleOptions
from models.engine_options.ebm import EBMConfig, EBMSampleOptions
from models.engine_options.gan import GANConfig, GANSampleOptions
from models.engine_options.sampling import LEFT_OUT, SampleOptions

CONFIGS: dict[str, type[TrainOptions]] = {
    "ddpm": DDPMConfig,
    "gan": GANConfig,
    "ebm": EBMConfig,
}
SAMPLING: dict[str, type[SampleOptions]] = {
    "ddpm": DDPMSampleOptions,
    "gan": GANSampleOptions,
    "ebm": EBMSampleOptions,
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
        "options": _describe_options(cls),
        "sample_options": _describe_options(SAMPLING[engine]),
    }


def _describe_options(cls: type[Any]) -> list[dict[str, Any]]:
    return [_describe_option(cls, field) for field in dataclasses.fields(cls)]


def _describe_option(cls: type[Any], field: dataclasses.Field[Any]) -> dict[str, Any]:
    info = cls.__pydantic_fields__[field.name]
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    default = info.get_default(call_default_factory=True)
    out: dict[str, Any] = {
        "name": field.name,
        "type": type_text(info.annotation),
        "default": default,
        "default_text": default_text(default, extra),
        "help": info.description or "",
        **bounds(info.metadata),
        **bounds(_item_metadata(info.annotation), prefix="item_"),
    }
    out["range_text"] = bounds_text(out)
    if choices := literal_choices(info.annotation):
        out["choices"] = list(choices)
    if BY_IMAGE_SIZE in extra:
        out["default_by_image_size"] = extra[BY_IMAGE_SIZE]
    if BY_OPTION in extra:
        out["default_by_option"] = extra[BY_OPTION]
    return out


def default_text(default: Any, extra: dict[str, Any]) -> str:
    """The default as a person reads it: a value, a rule by image size, or by an option;
    for a sampling option, what a left-out value samples with."""
    if LEFT_OUT in extra:
        return str(extra[LEFT_OUT])
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


def _item_metadata(annotation: Any) -> list[Any]:
    """The constraints on a list option's items (``list[Annotated[int, Field(ge=1)]]``)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return [m for arg in args for m in _item_metadata(arg)]
    if origin is list and typing.get_origin(args[0]) is typing.Annotated:
        extras = typing.get_args(args[0])[1:]
        return [m for extra in extras for m in getattr(extra, "metadata", [extra])]
    return []


def bounds_text(option: dict[str, Any]) -> str:
    """``{"min": 1, "max": 10}`` → "1 to 10"; "> 0, ≤ 10"; "2 to 5 items, each ≥ 1"."""
    text = _range(option, "")
    if "min_items" in option:
        count = _span(option["min_items"], option["max_items"])
        items = _range(option, "item_")
        return f"{count} items" + (f", each {items}" if items else "")
    if option.get("multiple_of"):
        text += f", a multiple of {option['multiple_of']}"
    return text


def _range(option: dict[str, Any], prefix: str) -> str:
    low, high = option.get(prefix + "min"), option.get(prefix + "max")
    if low is not None and high is not None:
        return _span(low, high)
    parts = []
    if low is not None:
        parts.append(f"≥ {_num(low)}")
    if option.get(prefix + "exclusive_min") is not None:
        parts.append(f"> {_num(option[prefix + 'exclusive_min'])}")
    if high is not None:
        parts.append(f"≤ {_num(high)}")
    if option.get(prefix + "exclusive_max") is not None:
        parts.append(f"< {_num(option[prefix + 'exclusive_max'])}")
    return ", ".join(parts)


def _span(low: Any, high: Any) -> str:
    return _num(low) if low == high else f"{_num(low)} to {_num(high)}"


def _num(value: Any) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        value = int(value)
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"


def literal_choices(annotation: Any) -> tuple[Any, ...]:
    """The values a ``Literal`` option takes (through Optional and nested Literals); ()
    for any other type."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return args
    if origin in (typing.Union, types.UnionType):
        return tuple(choice for arg in args for choice in literal_choices(arg))
    return ()


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
    if dataclasses.is_dataclass(annotation):  # a nested options class (privacy)
        return "object {" + ", ".join(f.name for f in dataclasses.fields(annotation)) + "}"
    names = {int: "integer", float: "number", bool: "boolean", str: "string"}
    return "null" if annotation is type(None) else names.get(annotation, str(annotation))


__all__ = [
    "CONFIGS",
    "SAMPLING",
    "DDPMConfig",
    "DDPMSampleOptions",
    "EBMConfig",
    "EBMSampleOptions",
    "GANConfig",
    "GANSampleOptions",
    "PrivacyOptions",
    "SampleOptions",
    "TrainOptions",
    "describe",
]
