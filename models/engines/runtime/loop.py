"""The step loop every engine trains in: progress every step, ``should_stop`` polled
every step, held-out evaluations every ``eval_every`` steps and at the last (keep-best,
early stopping), resumable checkpoints every ``checkpoint_every`` steps, and resuming."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Protocol

from models.engines.base import Hooks, Stopped
from models.engines.runtime.budget import Budget
from models.engines.runtime.checkpoints import load_state, save_state
from models.engines.runtime.selection import Selection


class Run(Protocol):
    """What :func:`train_loop` drives: one engine's mutable training state."""

    step: int
    budget: Budget

    def train_step(self) -> dict[str, float]: ...

    def progress_terms(self) -> dict[str, float]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def train_loop(
    engine: str,
    run: Run,
    hooks: Hooks,
    checkpoint_every: int,
    selection: Selection | None = None,
) -> dict[str, float]:
    """Step ``run`` until its budget is spent (or ``selection``'s patience); returns the
    last step's loss terms.

    1. ``hooks.should_stop()`` before every step → a checkpoint of the steps done so far
       (so a run stopped for a shutdown resumes where it stopped; the hook may drop it),
       then :class:`Stopped`.
    2. ``run.train_step()``; every ``eval_every`` steps and at the last, the held-out
       evaluation (:meth:`.selection.Selection.evaluate`), which may end the run early.
    3. ``hooks.progress(step, max_steps, **loss_terms)``, with the ε spent so far on a
       private run (``run.progress_terms()``) and the evaluation's scores: one curve row.
    4. Every ``checkpoint_every`` steps: ``run.state_dict()`` into a temporary directory
       that lives for the ``hooks.checkpoint(step, directory)`` call.
    """
    terms: dict[str, float] = {}
    # The end is decided once per step, so the step that ends the run is the one scored.
    done = run.budget.exhausted(run.step) or (selection is not None and selection.patience_spent)
    while not done:
        if hooks.should_stop():
            if checkpoint_every and run.step % checkpoint_every:
                _checkpoint(engine, run, hooks)
            raise Stopped(f"training stopped at step {run.step}")
        terms = run.train_step()
        done = run.budget.exhausted(run.step)
        scores: dict[str, float] = {}
        if selection is not None and (done or selection.due(run.step)):
            scores = selection.evaluate(run.step)
            done = done or selection.patience_spent
        hooks.progress(run.step, run.budget.total, **terms, **run.progress_terms(), **scores)
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
    engine: str,
    run: Run,
    hooks: Hooks,
    checkpoint_every: int,
    selection: Selection | None = None,
) -> dict[str, float]:
    """:func:`train_loop`, after restoring ``run`` from ``hooks.resume_from`` when set."""
    if hooks.resume_from is not None:
        run.load_state_dict(load_state(hooks.resume_from))
    return train_loop(engine, run, hooks, checkpoint_every, selection)
