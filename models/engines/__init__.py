"""The engine registry: ``get(name) -> Engine`` and ``names()``.

Engines are imported on first use, so listing names (the API validates requests with
it) never loads diffusers. Adding an engine is one module (a
:class:`models.engines.runtime.engine.RuntimeEngine` with its model, loss and sampler)
and one :func:`register` line below.
"""

from __future__ import annotations

import importlib

from models.engines.base import Engine, EngineError

_ENGINES: dict[str, str] = {}
"""name: "module:attribute" of an Engine instance."""


def register(name: str, target: str) -> None:
    """Register the Engine instance at ``target`` ("module:attribute") as ``name``."""
    if _ENGINES.get(name, target) != target:
        raise ValueError(f"engine {name!r} is already registered as {_ENGINES[name]!r}")
    _ENGINES[name] = target


def unregister(name: str) -> None:
    """Forget ``name`` (a test's fixture engine); unknown names are an error."""
    del _ENGINES[name]


register("ddpm", "models.engines.ddpm:ENGINE")
register("gan", "models.engines.gan:ENGINE")
register("ebm", "models.engines.ebm:ENGINE")


def names() -> list[str]:
    """The registered engine names, sorted."""
    return sorted(_ENGINES)


def get(name: str) -> Engine:
    """The engine registered as ``name``; :class:`EngineError` lists the valid names."""
    try:
        target = _ENGINES[name]
    except KeyError:
        raise EngineError(f"unknown engine {name!r}; choose one of {names()}") from None
    module_name, attribute = target.split(":")
    engine: Engine = getattr(importlib.import_module(module_name), attribute)
    return engine


__all__ = ["Engine", "EngineError", "get", "names", "register", "unregister"]
