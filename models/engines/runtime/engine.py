"""The Engine contract (:mod:`models.engines.base`) around an engine's own parts.

An engine subclasses :class:`RuntimeEngine` and gives: its options class, its run
(a :class:`.run.TrainingRun` with the model and the loss), the networks a trained model
keeps, how to rebuild the sampling network, and ``draw`` (the sampler). Config
resolution, label checks, fine-tuning, the resumable step loop, saving and loading are
the runtime's, the same for every engine.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np
import torch

from models.datasets import ImageDataset, resize
from models.engines.base import EngineError, Hooks, Trained
from models.engines.runtime import config as configs
from models.engines.runtime import devices, loop, model_files, resume, sampling
from models.engines.runtime.run import TrainingRun

ConfigT = TypeVar("ConfigT", bound=Any)


class RuntimeEngine(ABC, Generic[ConfigT]):
    """One engine: train, sample, save and load (the Engine protocol)."""

    name: str
    options: type[ConfigT]
    """The options class (:mod:`models.engine_options`) the API validates with too."""
    run_class: type[TrainingRun[Any]]
    sampler_module: str
    """The network ``load`` rebuilds and ``draw`` samples from."""
    sample_options: tuple[str, ...] = ("batch_size", "planned_images", "progress", "should_stop")
    """What ``sample`` takes; ``planned_images`` (how many images the caller samples in
    all, a generate job's count) is a hint an engine may use to pick its arithmetic."""
    white_box_attack: str = ""
    """What :meth:`membership_scores` measures, one line for the report; "" when nothing."""

    # ------------------------------------------------------------------ the engine's parts

    @abstractmethod
    def trained_modules(self, run: Any) -> dict[str, torch.nn.Module]:
        """The networks a finished ``run`` keeps (what ``save`` writes)."""

    @abstractmethod
    def build_sampler(self, config: ConfigT, channels: int, num_classes: int) -> torch.nn.Module:
        """The untrained network saved as :attr:`sampler_module`, for ``load``."""

    @abstractmethod
    def draw(self, trained: Trained, config: ConfigT, want: sampling.Draw) -> torch.Tensor:
        """uint8 (n, c, h, w) on CPU: the images ``want`` (:class:`.sampling.Draw`) asks for."""

    def start_from(self, run: Any, directory: Path, data: ImageDataset) -> None:
        """Fine-tuning: load the saved model in ``directory`` into ``run``'s networks
        (:func:`.finetune.init_weights`). Engines that cannot refuse."""
        raise EngineError(f"the {self.name} engine cannot start from saved weights (init_from)")

    # ------------------------------------------------------------------ config

    def resolve(self, config: ConfigT, data_size: int | None) -> ConfigT:
        """Fill the data-derived fields (:func:`.config.resolve`)."""
        resolved: ConfigT = configs.resolve(config, data_size, engine=self.name)
        return resolved

    def saved_config(self, values: Mapping[str, Any]) -> ConfigT:
        """The resolved config of a trained model from its saved dict."""
        saved = self.options.saved(values)  # a model saved before an option existed
        return self.resolve(configs.make_config(self.options, saved, engine=self.name), None)

    def default_config(self, *, image_size: int) -> dict[str, Any]:
        """The defaults a user who sets nothing gets at this image size."""
        return dataclasses.asdict(self.resolve(self.options(), image_size))

    # ------------------------------------------------------------------ the contract

    def train(
        self, data: ImageDataset, config: Mapping[str, Any], hooks: Hooks | None = None
    ) -> Trained:
        """Train on ``data`` (images uint8 (n, c, h, w), labels int64 (n,)).

        Calls ``hooks.progress(step, max_steps, **terms)`` after every step, raises Stopped
        when ``hooks.should_stop()`` turns true, TrainingDiverged on a non-finite loss, and
        every ``checkpoint_every`` steps hands a resumable checkpoint to
        ``hooks.checkpoint(step, directory)``; resumes from ``hooks.resume_from`` and
        fine-tunes from ``hooks.init_from`` when set.
        """
        hooks = hooks or Hooks()
        if hooks.resume_from is not None:
            config = resume.config_to_resume(self.options, config, hooks.resume_from)
        options = configs.make_config(self.options, config, engine=self.name)
        cfg = configs.with_delta(self.resolve(options, square_size(data)), len(data))
        check_training_labels(cfg.conditional, data)
        images = resize(data.images, cfg.image_size)
        run = self.run_class(cfg, data, images, devices.pick_device())
        if hooks.init_from is not None:
            self.start_from(run, hooks.init_from, data)
        loop.resume_and_train(self.name, run, hooks, cfg.checkpoint_every)
        return Trained(
            engine=self.name,
            config=dataclasses.asdict(cfg),
            num_classes=data.num_classes,
            image_shape=(data.image_shape[0], cfg.image_size, cfg.image_size),
            class_names=list(data.class_names),
            modules=self.trained_modules(run),
            metrics=run.metrics(),
            privacy=run.privacy_report(),
        )

    def sample(
        self,
        trained: Trained,
        n: int,
        labels: torch.Tensor | None = None,
        seed: int = 0,
        **opts: Any,
    ) -> torch.Tensor:
        """Draw ``n`` images, uint8 (n, c, h, w) on CPU; ``labels`` int64 (n,) in
        [0, num_classes), or None for classes in turn (0, 1, ...). Options: see ``draw``."""
        sampling.check_sample_options(self.name, opts, self.sample_options)
        cfg = self.saved_config(trained.config)
        y = sampling.sample_labels(trained, cfg.conditional, n, labels)
        return self.draw(trained, cfg, sampling.Draw(n, y, seed, opts))

    def membership_scores(
        self,
        trained: Trained,
        images: torch.Tensor,
        labels: torch.Tensor,
        *,
        seed: int,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> np.ndarray | None:
        """The white-box membership-inference score of each candidate: float64 (n,), higher
        for an image more likely to be one ``trained`` was trained on
        (:func:`models.metrics.membership.attack` turns them into an AUC and a TPR).

        images: uint8 (n, c, h, w) at the model's image shape; labels: int64 (n,), their
        classes (unconditional models ignore them). The same (images, labels, seed) on one
        device gives the same scores. None: this engine, or this saved model, has no
        white-box attack; the black-box one (``membership.distance_scores``) still applies.
        """
        return None

    def save(self, trained: Trained, directory: Path) -> list[Path]:
        """``model.safetensors`` (:attr:`trained.modules`) and ``config.json``."""
        return model_files.save_trained(trained, directory)

    def load(self, directory: Path) -> Trained:
        """Rebuild what :meth:`save` wrote, on CUDA when available; no pickle involved."""
        return model_files.load_trained(
            directory,
            self.name,
            read_config=self.saved_config,
            build=self.build_sampler,
            module=self.sampler_module,
            optional=self.optional_modules(),
        )

    def optional_modules(self) -> dict[str, Callable[[ConfigT, int, int], torch.nn.Module]]:
        """Other saved networks ``load`` rebuilds when the files hold them (name -> build,
        as :meth:`build_sampler`); sampling never reads them. None by default."""
        return {}


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
