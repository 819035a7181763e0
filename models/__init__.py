"""The generative models: datasets, engines and metrics, importable with torch alone.

Submodules load on first attribute access, so ``import models`` stays cheap.
"""

from __future__ import annotations

import importlib
from types import ModuleType

_SUBMODULES = ("datasets", "engines", "metrics")


def __getattr__(name: str) -> ModuleType:
    if name in _SUBMODULES:
        return importlib.import_module(f"models.{name}")
    raise AttributeError(f"module 'models' has no attribute {name!r}")


__all__ = list(_SUBMODULES)
