"""What a resumed run may change: the keys that bound a run, not those that shape it."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from models.engines.base import EngineError
from models.engines.runtime.checkpoints import CHECKPOINT_META, unflatten_state

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


def config_to_resume(options: Any, named: Mapping[str, Any], directory: Path) -> dict[str, Any]:
    """The options a run resumed from the checkpoint in ``directory`` is built with: those
    ``named`` by the request, and for every other option the value the checkpoint's run
    was built with, not today's default. A default changed by an upgrade between a job's
    checkpoint and its resume (ebm's lr at 28 px, say) then neither refuses the resume
    nor changes the run, nor its length (ebm's max_steps from 28 px). Only the sampling
    defaults are left to today's, as a fresh run would get them."""
    path = Path(directory) / CHECKPOINT_META
    if not path.is_file():
        return dict(named)  # not a checkpoint: loading it says so
    skeleton = json.loads(path.read_text())
    saved = options.saved(unflatten_state({}, {"config": skeleton.get("config", {})})["config"])
    fields = {field.name for field in dataclasses.fields(options)}
    inherited = {
        k: v for k, v in saved.items() if k in fields and k not in options.SAMPLING_DEFAULTS
    }
    return {**inherited, **named}
