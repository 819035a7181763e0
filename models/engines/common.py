"""Pieces the GAN and EBM engines share: label checks and the step loop around a run.

The loop is where the engine contract lives (progress every step, ``should_stop`` polled
every step, resumable checkpoints every ``checkpoint_every`` steps), so both engines
honour it the same way; the maths stays in each engine's ``_Run.train_step``.

The DDPM engine uses them too, with the steps around the loop every engine takes alike:
:func:`square_size` of the data, :func:`run_state` and :func:`restore_run_state` for the
checkpoint's bookkeeping, :func:`resume_and_train`, :func:`trained_model` for the result
and :func:`load_trained` for what ``training.save_trained`` wrote.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol, TypeVar

import torch

from models.datasets import ImageDataset
from models.engines import training
from models.engines.base import EngineError, Hooks, Stopped, Trained

RESUMABLE_CHANGES = frozenset({"max_steps", "max_seconds", "checkpoint_every"})
"""Config keys a resumed run may change: they bound the run, they do not shape the model."""


class Run(Protocol):
    """What :func:`train_loop` drives: one engine's mutable training state."""

    step: int
    budget: training.Budget

    def train_step(self) -> dict[str, float]: ...

    def state_dict(self) -> dict[str, Any]: ...


class ResumableRun(Run, Protocol):
    """A :class:`Run` that a state written by its own ``state_dict`` restores."""

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class SeededRun(Run, Protocol):
    """A :class:`Run` whose randomness and data order :func:`run_state` captures."""

    config: Any
    generator: torch.Generator
    order: training.DataOrder


ConfigT = TypeVar("ConfigT")


def square_size(data: ImageDataset) -> int | None:
    """The side s of ``data``'s images (n, c, s, s), or None when they are not square
    (the config must then name an image_size)."""
    _, _, height, width = data.images.shape
    return height if height == width else None


def check_training_labels(conditional: bool, data: ImageDataset) -> None:
    """EngineError unless ``data.labels`` (n,) lie in [0, num_classes) when conditional."""
    if not conditional:
        return
    if data.num_classes < 1:
        raise EngineError("conditional training needs labelled data; set conditional: false")
    low, high = int(data.labels.min()), int(data.labels.max())
    if low < 0 or high >= data.num_classes:
        raise EngineError(
            f"dataset labels must lie in [0, {data.num_classes}), got {low} to {high}"
        )


def sample_labels(
    trained: Trained, conditional: bool, n: int, labels: torch.Tensor | None
) -> torch.Tensor | None:
    """int64 (n,) labels to condition on (classes in turn when None), or None when the
    model is unconditional."""
    if not isinstance(n, int) or n < 1:
        raise EngineError(f"n must be a positive integer, got {n!r}")
    if not conditional:
        if labels is not None:
            raise EngineError("this model was trained with conditional: false; pass labels=None")
        return None
    if labels is None:
        return torch.arange(n) % trained.num_classes
    labels = torch.as_tensor(labels)
    if labels.shape != (n,) or labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise EngineError(
            f"labels must be {n} integers (shape ({n},)), got {labels.dtype} {tuple(labels.shape)}"
        )
    if int(labels.min()) < 0 or int(labels.max()) >= trained.num_classes:
        raise EngineError(
            f"labels must lie in [0, {trained.num_classes}) for classes {trained.class_names}; "
            f"got values from {int(labels.min())} to {int(labels.max())}"
        )
    return labels.to(torch.int64)


def check_sample_options(engine: str, opts: Iterable[str], valid: tuple[str, ...]) -> None:
    """EngineError naming the first option of ``opts`` not in ``valid``."""
    unknown = sorted(set(opts) - set(valid))
    if unknown:
        raise EngineError(
            f"unknown {engine} sample option {unknown[0]!r}; valid options are {list(valid)}"
        )


def check_resume(engine: str, config: Any, state: dict[str, Any]) -> None:
    """EngineError unless the checkpoint ``state`` was written by ``engine`` with the same
    config (dataclass) up to :data:`RESUMABLE_CHANGES`."""
    if state.get("engine") != engine:
        raise EngineError(f"the checkpoint was written by {state.get('engine')!r}, not {engine}")
    saved = state["config"]
    changed = [
        key
        for key, value in dataclasses.asdict(config).items()
        if key not in RESUMABLE_CHANGES and saved.get(key) != value
    ]
    if changed:
        raise EngineError(
            f"cannot resume: config {changed} differs from the checkpoint's; only "
            f"{sorted(RESUMABLE_CHANGES)} may change when resuming"
        )


def run_state(engine: str, run: SeededRun) -> dict[str, Any]:
    """The part of a checkpoint every engine writes alike: who wrote it with which config
    (what :func:`check_resume` reads), the step, and all that decides the next batch and
    noise draw (the run's generator, the global RNGs, the data order) and the time spent.
    The engine adds its networks, optimisers and loss history."""
    return {
        "engine": engine,
        "config": dataclasses.asdict(run.config),
        "step": run.step,
        "generator": run.generator.get_state(),
        "rng": training.rng_state(),
        "data": run.order.state_dict(),
        "budget": run.budget.state_dict(),
    }


def restore_run_state(engine: str, run: SeededRun, state: dict[str, Any]) -> None:
    """:func:`check_resume`, then restore into ``run`` what :func:`run_state` wrote."""
    check_resume(engine, run.config, state)
    run.step = int(state["step"])
    run.generator.set_state(state["generator"])
    training.set_rng_state(state["rng"])
    run.order.load_state_dict(state["data"])
    run.budget.load_state_dict(state["budget"])


def train_loop(engine: str, run: Run, hooks: Hooks, checkpoint_every: int) -> dict[str, float]:
    """Step ``run`` until its budget is spent; returns the last step's loss terms.

    1. ``hooks.should_stop()`` before every step → a checkpoint of the steps done so far
       (so a run stopped for a shutdown resumes where it stopped; the hook may drop it),
       then :class:`Stopped`.
    2. ``run.train_step()`` → ``hooks.progress(step, max_steps, **loss_terms)``.
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
        hooks.progress(run.step, run.budget.total, **terms)
        if checkpoint_every and run.step % checkpoint_every == 0:
            _checkpoint(engine, run, hooks)
    return terms


def _checkpoint(engine: str, run: Run, hooks: Hooks) -> None:
    if hooks.checkpoint is None:
        return
    with tempfile.TemporaryDirectory(prefix=f"{engine}-checkpoint-") as directory:
        training.save_state(Path(directory), run.state_dict())
        hooks.checkpoint(run.step, Path(directory))


def init_weights(
    engine: str,
    directory: Path,
    data: ImageDataset,
    targets: Mapping[str, Iterable[torch.nn.Module]],
    optional: frozenset[str] = frozenset(),
) -> None:
    """Load the networks ``save`` wrote in ``directory`` into ``targets`` (saved module
    name → the modules to fill, e.g. the trained net and its EMA copy) for fine-tuning.

    EngineError when the files are another engine's, were trained on another number of
    classes or channels, or do not fit the modules (the config changed the architecture).
    A saved module missing from the files is an error unless it is in ``optional``.
    """
    description, states = training.read_trained(directory, engine)
    saved_classes = int(description["num_classes"])
    saved_channels = int(description["image_shape"][0])
    if (saved_classes, saved_channels) != (data.num_classes, data.image_shape[0]):
        raise EngineError(
            f"init_from: the parent model was trained on {saved_classes} classes of "
            f"{saved_channels}-channel images; this dataset has {data.num_classes} classes of "
            f"{data.image_shape[0]}-channel images; fine-tune on data with the same classes"
        )
    for name, modules in targets.items():
        if name not in states:
            if name in optional:
                continue
            raise EngineError(f"init_from: the parent model's files hold no {name!r} network")
        for module in modules:
            try:
                module.load_state_dict(states[name])
            except RuntimeError as exc:
                first = str(exc).strip().splitlines()[-1].strip()
                raise EngineError(
                    f"init_from: the parent's {name} does not fit this config ({first}); "
                    "leave out the config keys that shape the network (image_size, widths, "
                    "channel counts) so that they are the parent's"
                ) from None


def resume_and_train(
    engine: str, run: ResumableRun, hooks: Hooks, checkpoint_every: int
) -> dict[str, float]:
    """:func:`train_loop`, after restoring ``run`` from ``hooks.resume_from`` when set."""
    if hooks.resume_from is not None:
        run.load_state_dict(training.load_state(hooks.resume_from))
    return train_loop(engine, run, hooks, checkpoint_every)


def trained_model(
    engine: str,
    config: Any,
    data: ImageDataset,
    modules: dict[str, torch.nn.Module],
    metrics: dict[str, float],
) -> Trained:
    """What a run on ``data`` produced: ``modules`` at ``config.image_size`` (a resolved
    config dataclass), with the data's channels and classes."""
    return Trained(
        engine=engine,
        config=dataclasses.asdict(config),
        num_classes=data.num_classes,
        image_shape=(data.image_shape[0], config.image_size, config.image_size),
        class_names=list(data.class_names),
        modules=modules,
        metrics=metrics,
    )


def load_trained(
    directory: Path,
    engine: str,
    *,
    read_config: Callable[[Mapping[str, Any]], ConfigT],
    build: Callable[[ConfigT, int, int], torch.nn.Module],
    module: str,
) -> Trained:
    """Rebuild what ``training.save_trained`` wrote, on CUDA when available, frozen for
    sampling; no pickle involved.

    read_config: the saved config dict -> the engine's resolved config dataclass.
    build: (config, channels, num_classes) -> the untrained network saved as ``module``.
    """
    description, states = training.read_trained(directory, engine)
    config = read_config(description["config"])
    channels, height, width = (int(v) for v in description["image_shape"])
    num_classes = int(description["num_classes"])
    net = build(config, channels, num_classes)
    net.load_state_dict(states[module])
    device = training.pick_device()
    net = training.channels_last(net.to(device), device).eval().requires_grad_(False)
    return Trained(
        engine=engine,
        config=dataclasses.asdict(config),  # type: ignore[call-overload]
        num_classes=num_classes,
        image_shape=(channels, height, width),
        class_names=list(description["class_names"]),
        modules={module: net},
        metrics=dict(description["metrics"]),
    )
