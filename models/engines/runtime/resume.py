"""What a resumed run may change: the keys that bound a run, not those that shape it."""

from __future__ import annotations

import dataclasses
from typing import Any

from models.engines.base import EngineError

RESUMABLE_CHANGES = frozenset({"max_steps", "max_seconds", "checkpoint_every"})
"""Config keys a resumed run may change: they bound the run, they do not shape the model."""


def check_resume(engine: str, config: Any, state: dict[str, Any]) -> None:
    """EngineError unless the checkpoint ``state`` was written by ``engine`` with the same
    config (dataclass) up to :data:`RESUMABLE_CHANGES` and the options' sampling defaults."""
    if state.get("engine") != engine:
        raise EngineError(f"the checkpoint was written by {state.get('engine')!r}, not {engine}")
    # A checkpoint written before an option existed holds what its run was built with.
    options = type(config)
    saved = options.saved(state["config"])
    free = RESUMABLE_CHANGES | options.SAMPLING_DEFAULTS
    changed = [
        key
        for key, value in dataclasses.asdict(config).items()
        if key not in free and saved.get(key) != value
    ]
    if changed:
        raise EngineError(
            f"cannot resume: config {changed} differs from the checkpoint's; only "
            f"{sorted(free)} may change when resuming"
        )
