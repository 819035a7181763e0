"""Numbers in request bodies follow JSON Schema: ``true`` is not 1, ``"5"`` is not 5, and
``25.0`` is the integer 25.

Models built on :class:`JsonNumbers` validate strictly (pydantic's lax mode would turn
booleans and numeric strings into numbers, which the OpenAPI schema refuses), after
turning integral floats given for integer fields into ints (which strict mode alone
would refuse, while JSON Schema accepts them).
"""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator


def _takes_int_not_float(annotation: Any) -> bool:
    admitted = _types(annotation)
    return int in admitted and float not in admitted


def _types(annotation: Any) -> set[Any]:
    """The base types an annotation admits (through Optional, unions and Annotated)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _types(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return set().union(*(_types(arg) for arg in typing.get_args(annotation)))
    return {origin or annotation}


def _item(annotation: Any) -> Any | None:
    """The item type of a list annotation (through Optional and Annotated), if any."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _item(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        items = [_item(arg) for arg in typing.get_args(annotation)]
        return next((item for item in items if item is not None), None)
    return typing.get_args(annotation)[0] if origin is list else None


def integral(value: Any, annotation: Any) -> Any:
    """``value`` with integral floats made ints where ``annotation`` wants an int."""
    if isinstance(value, float) and value.is_integer() and _takes_int_not_float(annotation):
        return int(value)
    if isinstance(value, list) and (item := _item(annotation)) is not None:
        return [integral(element, item) for element in value]
    return value


class JsonNumbers(BaseModel):
    model_config = ConfigDict(strict=True)

    @model_validator(mode="before")
    @classmethod
    def _integral_floats(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        fields = cls.model_fields
        return {
            key: integral(value, fields[key].annotation) if key in fields else value
            for key, value in data.items()
        }
