"""The Engine contract every generative model family implements.

An engine trains on a :class:`models.datasets.ImageDataset`, samples uint8 images, and
saves/loads itself as safetensors + JSON (never pickle). The worker drives every engine
through this contract alone, so ``worker/`` and ``api/`` hold no engine-specific code.

Shapes: images are ``uint8 (n, c, h, w)``; labels are ``int64 (n,)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch

from errors import UserError
from models.datasets import ImageDataset
from models.errors import Stopped as Stopped  # re-exported: engines raise it from here

Labels = torch.Tensor | None
"""The class of each image to draw, int64 (n,); None: the classes in turn."""
Images = torch.Tensor
"""uint8 (n, c, h, w) on CPU."""

FORMAT_VERSION = 1
"""Checkpoint format version written into every ``config.json``."""


class EngineError(UserError):
    """A problem the caller can fix; the message says how. Shown to users verbatim."""


class TrainingDiverged(EngineError):
    """A loss became NaN/inf; the message names the loss and suggests a change."""


def _no_progress(step: int, total: int, **metrics: float) -> None:
    return None


def _never_stop() -> bool:
    return False


class Scorer(Protocol):
    """Scores a fixed sample of generated images against held-out real ones (built by
    :attr:`Scoring.make_scorer`; :class:`models.metrics.heldout.HeldOutScore` is one)."""

    count: int
    """How many images each evaluation draws."""
    features: str
    """Where the distances are measured, for the report ("mnist_t10k classifier (28px)")."""

    def __call__(self, images: torch.Tensor, labels: torch.Tensor | None) -> dict[str, float]:
        """uint8 (count, c, h, w) drawn for ``labels`` int64 (count,) (None: unconditional)
        → {"fd": …} and, with labels, {"label_agreement": …}."""
        ...


@dataclass
class Scoring:
    """How a run scores its sampling weights every ``eval_every`` steps (keep-best,
    :mod:`.runtime.selection`).

    make_scorer(held_out): the scorer for the held-out images (uint8 (m, c, s, s) at the
        training size, labels int64 (m,)), called once per run.
    held_out: real images of the same dataset the user will not judge the model on (a
        split of its own); None: a seeded slice of the training data, which the optimiser
        then never sees. ``held_out_ref`` names it for the lineage ("digits:train").
    """

    make_scorer: Callable[[ImageDataset], Scorer]
    held_out: ImageDataset | None = None
    held_out_ref: str = ""


@dataclass
class Hooks:
    """Callbacks the runner passes into ``train``/``sample``.

    progress(step, total, **metrics): called after every optimisation step (cheap; the
        runner throttles its own writes). ``metrics`` holds each loss term as a float.
    should_stop(): polled once per step; when true the engine checkpoints the steps done
        (through ``checkpoint``, when set) and raises :class:`Stopped`.
    checkpoint(step, directory): called after the engine wrote a resumable checkpoint
        into ``directory`` every ``config.checkpoint_every`` steps; the runner uploads it.
    resume_from: a directory written by a previous checkpoint; training continues from it
        and ends with the same weights as an uninterrupted run.
    init_from: a directory written by ``save`` of the same engine (fine-tuning): the
        networks start from its weights instead of random ones, with a fresh optimiser;
        the config must keep the saved model's architecture and its number of classes.
        Engines that cannot start from saved weights raise EngineError.
    scoring: held-out scoring for keep-best and early stopping (:class:`Scoring`), used
        when the config's ``eval_every`` is above 0; None: the run is not scored.
    evaluated(step, scores): called after each evaluation with its figures and the best
        so far (the runner records them as events).
    """

    progress: Callable[..., None] = _no_progress
    should_stop: Callable[[], bool] = _never_stop
    checkpoint: Callable[[int, Path], None] | None = None
    resume_from: Path | None = None
    init_from: Path | None = None
    scoring: Scoring | None = None
    evaluated: Callable[[int, dict[str, Any]], None] | None = None


@dataclass
class Trained:
    """A trained model in memory: what ``sample`` and ``save`` need.

    ``modules`` are the networks to save (their state_dicts go to safetensors);
    ``config`` is the engine's resolved config as a plain dict; ``metrics`` the final
    training figures (last losses, steps run, seconds, ε spent when private);
    ``privacy`` what a differentially private run spent and how (ε, δ, noise multiplier,
    sampling rate, steps, max_grad_norm, accountant), None when it was not private;
    ``selection`` how the weights were chosen (:meth:`.runtime.selection.Selection.report`:
    the evaluations, the chosen and last step's scores, an early stop, tuned sampling
    defaults), None when the run was not scored.
    """

    engine: str
    config: dict[str, Any]
    num_classes: int
    image_shape: tuple[int, int, int]
    class_names: list[str]
    modules: dict[str, torch.nn.Module]
    metrics: dict[str, float] = field(default_factory=dict)
    privacy: dict[str, Any] | None = None
    selection: dict[str, Any] | None = None


@runtime_checkable
class Engine(Protocol):
    name: str

    def default_config(self, *, image_size: int) -> dict[str, Any]:
        """The engine's defaults for this image size (what a user who sets nothing gets)."""
        ...

    def train(
        self, data: ImageDataset, config: Mapping[str, Any], hooks: Hooks | None = None
    ) -> Trained: ...

    def sample(
        self, trained: Trained, n: int, labels: Labels = None, seed: int = 0, **opts: Any
    ) -> Images:
        """``n`` images; ``labels`` one class per image, or None for the classes in turn."""
        ...

    def save(self, trained: Trained, directory: Path) -> list[Path]: ...

    def load(self, directory: Path) -> Trained: ...
