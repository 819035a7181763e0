"""Engine configs from user values: the options classes of :mod:`models.engine_options`,
with a refusal said as an :class:`EngineError` naming the key."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

import pydantic

from models.engine_options.base import default_delta
from models.engines.base import EngineError

ConfigT = TypeVar("ConfigT")


class Sized(Protocol):
    """An options class whose ``resolved(image_size=)`` fills the size-derived fields."""

    image_size: int | None

    def resolved(self, image_size: int) -> Any: ...


SizedT = TypeVar("SizedT", bound=Sized)


def make_config(cls: type[ConfigT], values: Mapping[str, Any], *, engine: str) -> ConfigT:
    """Build the options class ``cls`` (:mod:`models.engine_options`) from ``values``.

    The class checks types and bounds exactly as the API does at submit; a refusal becomes
    an :class:`EngineError` naming the key, and an unknown key lists the valid ones.
    """
    valid = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    for key in values:
        if key not in valid:
            raise EngineError(f"unknown {engine} config key {key!r}; valid keys are {valid}")
    return checked(cls, engine, **values)


def checked(cls: Callable[..., ConfigT], engine: str, **values: Any) -> ConfigT:
    """``cls(**values)`` with a refusal said as an :class:`EngineError` naming the key."""
    try:
        return cls(**values)
    except pydantic.ValidationError as exc:
        raise EngineError(f"{engine} config {config_error(exc)}") from None


def config_error(exc: pydantic.ValidationError) -> str:
    """The first error as "'key': reason" (a rule between keys has no key)."""
    error = exc.errors()[0]
    reason = str(error["msg"]).removeprefix("Value error, ")
    key = ".".join(str(part) for part in error["loc"])
    return f"{key!r}: {reason}" if key else reason


def resolve(config: SizedT, data_size: int | None, *, engine: str) -> SizedT:
    """Fill the data-derived fields: ``image_size`` from the data (its side, or None when
    the images are not square), the rest by image size as the options class declares
    them; the derived values are checked like the user's."""
    image_size = config.image_size or data_size
    if image_size is None:
        raise EngineError("the dataset's images are not square; set image_size to train on them")
    resolved: SizedT = checked(config.resolved, engine, image_size=image_size)
    return resolved


def with_delta(config: ConfigT, n: int) -> ConfigT:
    """``config`` with a left-out ``privacy.delta`` set for ``n`` training examples
    (:func:`models.engine_options.base.default_delta`): resolved once, with the data, and
    saved with the model and its checkpoints like every other resolved option."""
    privacy = getattr(config, "privacy", None)
    if privacy is None or privacy.delta is not None:
        return config
    delta = default_delta(n)
    return dataclasses.replace(config, privacy=dataclasses.replace(privacy, delta=delta))  # type: ignore[type-var]
