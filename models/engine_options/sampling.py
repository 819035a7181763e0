"""How an engine's sampling options are declared: a pydantic dataclass per engine, beside
its train options (``DDPMSampleOptions`` in :mod:`models.engine_options.ddpm`, ...), each
field with its type, bounds, what a left-out value samples with, and help text.

A generate job's ``config`` (a preview's, an evaluate's ``sample_config``) is the same
for every engine until the model it names is looked up, so the request schema is
:func:`any_engine`: every engine's fields and rules in one class. At submit, the model's
own engine's class then refuses what its engine does not take; the engine checks a
``sample`` call with that class too (:mod:`models.engines.runtime.sampling`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar, Literal, get_args

from pydantic import Field, model_validator
from pydantic.dataclasses import dataclass
from pydantic.fields import FieldInfo

from models.engine_options.base import CONFIG, json_numbers

Precision = Literal["auto", "fp32"]
"""A sample request's ``precision``: auto (bf16 autocast where it is native) or fp32."""
PRECISIONS: tuple[str, ...] = get_args(Precision)

LEFT_OUT = "x-left-out"
"""Schema keyword of a sampling option's default in words: what sampling uses when the
request leaves it out (the model's own value, the sampler's steps, ...)."""


def sample_option(*, left_out: str, help: str, **bounds: Any) -> Any:  # noqa: A002
    """A sampling option's field: null by default (``left_out`` says what that samples
    with), ``help`` (the description everywhere), bounds as pydantic's ``ge``, ``le``, ..."""
    return Field(default=None, description=help, json_schema_extra={LEFT_OUT: left_out}, **bounds)


class Refusal(ValueError):
    """A rule between sampling options that names option values: the API shows them as
    written in JSON ("applies to sampler ddim only"), the engines, whose other messages
    show Python values, as reprs (:meth:`quoted`)."""

    def __init__(self, template: str, **values: str) -> None:
        super().__init__(template.format(**values))
        self.template, self.values = template, values

    def quoted(self) -> str:
        return self.template.format(**{key: repr(value) for key, value in self.values.items()})


@dataclass(config=CONFIG)
class SampleOptions:
    """What every engine's sampling options class has: its engine's name, JSON numbers
    (25.0 is the integer 25), and :meth:`options`, the values a request named."""

    ENGINE: ClassVar[str] = ""

    @model_validator(mode="before")
    @classmethod
    def _json_numbers(cls, data: Any) -> Any:
        return json_numbers(cls, data)

    def options(self) -> dict[str, Any]:
        """The options named (not null), as ``sample`` takes them."""
        values = dataclasses.asdict(self)  # type: ignore[call-overload]
        return {key: value for key, value in values.items() if value is not None}


def names(cls: type[SampleOptions]) -> tuple[str, ...]:
    return tuple(field.name for field in dataclasses.fields(cls))  # type: ignore[arg-type]


def any_engine(classes: dict[str, type[SampleOptions]], name: str, doc: str) -> type[SampleOptions]:
    """One class holding every engine's sampling options and rules (``classes``: engine →
    class): what a request may send before its model, hence its engine, is known. An
    option several engines take must have the same type and bounds in each (TypeError
    otherwise); its help says which engine takes it, and each engine's meaning."""
    fields: dict[str, list[tuple[str, FieldInfo]]] = {}
    for engine, cls in classes.items():
        for field in names(cls):
            fields.setdefault(field, []).append((engine, cls.__pydantic_fields__[field]))  # type: ignore[attr-defined]
    namespace: dict[str, Any] = {"__annotations__": {}, "__doc__": doc}
    for field, declared in fields.items():
        first = declared[0][1]
        for engine, info in declared[1:]:
            if (info.annotation, info.metadata) != (first.annotation, first.metadata):
                raise TypeError(f"sampling option {field!r} of {engine} differs from the others'")
        namespace["__annotations__"][field] = first.annotation
        namespace[field] = FieldInfo.merge_field_infos(
            first,
            description=_each(declared, lambda info: info.description),
            json_schema_extra={LEFT_OUT: _each(declared, _left_out)},
        )
    # Later bases' fields come first: the engines' order, as in GET /v1/engines.
    bases = tuple(reversed(classes.values()))
    return dataclass(type(name, bases, namespace), config=CONFIG)  # type: ignore[no-any-return]


def _left_out(info: FieldInfo) -> str:
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    return str(extra.get(LEFT_OUT, "null"))


def _each(declared: list[tuple[str, FieldInfo]], text: Callable[[FieldInfo], Any]) -> str:
    return "; ".join(f"{engine}: {text(info)}" for engine, info in declared)
