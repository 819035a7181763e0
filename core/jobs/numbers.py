"""Numbers in request bodies follow JSON Schema: ``true`` is not 1, ``"5"`` is not 5, and
``25.0`` is the integer 25.

Models built on :class:`JsonNumbers` validate strictly (pydantic's lax mode would turn
booleans and numeric strings into numbers, which the OpenAPI schema refuses), after
turning integral floats given for integer fields into ints (which strict mode alone
would refuse, while JSON Schema accepts them).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

# One rule for JSON numbers, shared with the engines' options classes.
from models.engine_options.base import integral

__all__ = ["JsonNumbers", "integral"]


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
