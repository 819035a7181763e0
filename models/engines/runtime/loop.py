"""The step loop every engine trains in: progress every step, ``should_stop`` polled
every step, resumable checkpoints every ``checkpoint_every`` steps, and resuming."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Protocol

from models.engines.base import Hooks, Stopped
from models.engines.runtime.budget import Budget
from models.engines.runtime.checkpoints import load_state, save_state


class Run(Protocol):
    """What :func:`train_loop` drives: one engine's mutable training state."""

    step: int
    budget: Budget

    def train_step(self) -> dict[str, float]: ...

    def progress_terms(self) -> dict[str, float]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def train_loop(engine: str, run: Run, hooks: Hooks, checkpoint_every: int) -> dict[str, float]:
    """Step ``run`` until its budget is spent; returns the last step's loss terms.

    1. ``hooks.should_stop()`` before every step → a checkpoint of the steps done so far
       (so a run stopped for a shutdown resumes where it stopped; the hook may drop it),
       then :class:`Stopped`.
    2. ``run.train_step()`` → ``hooks.progress(step, max_steps, **loss_terms)``, with the
       ε spent so far on a private run (``run.progress_terms()``).
    3. Every ``checkpoint_every`` steps: ``run.state_dict()`` into a temporary directory
       that lives for the ``hooks.checkpoint(step, directory)`` call.
    """
    terms: dict[str, float] = {}
    while not run.budget.exhausted(run.step):
        if hooks.should_stop():
            if checkpoint_every and run.step % checkpoint_every:
                _checkpoint(engine, run, hooks)
            raise Stopped(f"training stopped at step {run.step}")
        terms = run.train_step()
        hooks.progress(run.step, run.budget.total, **terms, **run.progress_terms())
        if checkpoint_every and run.step % checkpoint_every == 0:
            _checkpoint(engine, run, hooks)
    return terms


def _checkpoint(engine: str, run: Run, hooks: Hooks) -> None:
    if hooks.checkpoint is None:
        return
    with tempfile.TemporaryDirectory(prefix=f"{engine}-checkpoint-") as directory:
        save_state(Path(directory), run.state_dict())
        hooks.checkpoint(run.step, Path(directory))


def resume_and_train(
    engine: str, run: Run, hooks: Hooks, checkpoint_every: int
) -> dict[str, float]:
    """:func:`train_loop`, after restoring ``run`` from ``hooks.resume_from`` when set."""
    if hooks.resume_from is not None:
        run.load_state_dict(load_state(hooks.resume_from))
    return train_loop(engine, run, hooks, checkpoint_every)
