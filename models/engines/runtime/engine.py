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
from models.engine_options.sampling import SampleOptions, names
from models.engines.base import EngineError, Hooks, Trained
from models.engines.runtime import config as configs
from models.engines.runtime import devices, holdout, loop, model_files, resume, sampling
from models.engines.runtime.run import TrainingRun
from models.engines.runtime.selection import EVAL_SEED, Selection

ConfigT = TypeVar("ConfigT", bound=Any)


class RuntimeEngine(ABC, Generic[ConfigT]):
    """One engine: train, sample, save and load (the Engine protocol)."""

    name: str
    options: type[ConfigT]
    """The options class (:mod:`models.engine_options`) the API validates with too."""
    run_class: type[TrainingRun[Any]]
    sampler_module: str
    """The network ``load`` rebuilds and ``draw`` samples from."""
    sampling: type[SampleOptions] = SampleOptions
    """The sampling options class (:mod:`models.engine_options`) the API validates with
    too; the base declares none."""
    white_box_attack: str = ""
    """What :meth:`membership_scores` measures, one line for the report; "" when nothing."""
    tuned_defaults: dict[str, tuple[str, tuple[float, ...]]] = {}
    """Sampling defaults a scored run chooses when the config leaves them out: option →
    (the sample option it sets, the values tried on the kept weights); see :meth:`tunes`."""

    @property
    def sample_options(self) -> tuple[str, ...]:
        """What ``sample`` takes: the declared sampling options, then the caller's own
        (:data:`.sampling.CALLER_OPTIONS`)."""
        return (*names(self.sampling), *sampling.CALLER_OPTIONS)

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
        cfg = self.resolve(options, square_size(data))
        check_training_labels(cfg.conditional, data)
        scoring = hooks.scoring if cfg.eval_every else None
        held_out, where = None, {}
        if scoring is not None:
            # The slice comes out before anything counts the data (δ, the privacy's n).
            data, held_out, where = holdout.held_out(
                data, _at_size(scoring.held_out, cfg.image_size), cfg.seed
            )
            where["ref"] = scoring.held_out_ref or f"{data.name}:{data.split}"
        cfg = configs.with_delta(cfg, len(data))
        # Made before the run starts its clock: a dataset classifier trained for it is
        # not training time.
        scorer = None
        if scoring is not None and held_out is not None:
            scorer = scoring.make_scorer(_at_size(held_out, cfg.image_size))
        images = resize(data.images, cfg.image_size)
        run = self.run_class(cfg, data, images, devices.pick_device())
        if scorer is not None:
            run.selection = self._selection(run, cfg, data, scorer, hooks)
        if hooks.init_from is not None:
            self.start_from(run, hooks.init_from, data)
        loop.resume_and_train(self.name, run, hooks, cfg.checkpoint_every, run.selection)
        trained = Trained(
            engine=self.name,
            config=dataclasses.asdict(cfg),
            num_classes=data.num_classes,
            image_shape=(data.image_shape[0], cfg.image_size, cfg.image_size),
            class_names=list(data.class_names),
            modules=self.trained_modules(run),
            metrics=run.metrics(),
            privacy=run.privacy_report(),
        )
        if run.selection is not None:
            trained.selection = self._choose(run.selection, run.step, options, trained)
            trained.selection["held_out"] = where
        elif cfg.eval_every:
            trained.selection = {"eval_every": 0, "keep": "last", "scored": False}
        return trained

    def _selection(
        self, run: Any, cfg: ConfigT, data: ImageDataset, scorer: Any, hooks: Hooks
    ) -> Selection:
        """Scoring of ``run``'s sampling weights as they are at each evaluation."""

        def now() -> Trained:
            return Trained(
                engine=self.name,
                config=dataclasses.asdict(cfg),
                num_classes=data.num_classes,
                image_shape=(data.image_shape[0], cfg.image_size, cfg.image_size),
                class_names=list(data.class_names),
                modules=self.trained_modules(run),
            )

        def draw(n: int, labels: torch.Tensor | None, opts: Mapping[str, Any]) -> torch.Tensor:
            want = sampling.Draw(n, labels, EVAL_SEED, {**self.scoring_options(cfg), **opts})
            return self.draw(now(), cfg, want)

        labels = torch.arange(scorer.count) % data.num_classes if cfg.conditional else None
        return Selection(
            eval_every=cfg.eval_every,
            keep=cfg.keep,
            patience=cfg.early_stop_patience,
            scorer=scorer,
            draw=draw,
            snapshot=lambda: self.trained_modules(run),
            labels=labels,
            evaluated=hooks.evaluated,
        )

    def _choose(
        self, selection: Selection, step: int, named: ConfigT, trained: Trained
    ) -> dict[str, Any]:
        """Keep the best weights (keep "best"), then choose the sampling defaults the
        config left out from :attr:`tuned_defaults` on them; the report says both."""
        selection.restore_best()
        report = selection.report(step)
        tuned = []
        chosen = selection.chosen()
        for option, (sample_option, values) in self.tunes(named, trained).items():
            # The chosen evaluation scored these very weights at the resolved default.
            known = {float(trained.config[option]): chosen} if chosen is not None else {}
            choice = selection.tune(option, sample_option, values, known)
            trained.config[option] = choice["chosen"]
            tuned.append(choice)
        report["sampling_defaults"] = tuned
        report["scoring_seconds"] = round(selection.seconds, 3)
        return report

    def check_sample(self, cfg: ConfigT, opts: Mapping[str, Any]) -> None:
        """Refuse (EngineError) what this model cannot sample with beyond what its
        sampling options class declares (override: ddpm's steps, at most its schedule's)."""

    def scoring_options(self, cfg: ConfigT) -> dict[str, Any]:
        """Sample options every held-out evaluation draws with (a cheaper sampler, say)."""
        return {}

    def tunes(self, named: ConfigT, trained: Trained) -> dict[str, tuple[str, tuple[float, ...]]]:
        """The :attr:`tuned_defaults` to choose for this run: those the config left out
        (``named`` holds None there) that matter for ``trained`` (override to narrow)."""
        return {
            option: choice
            for option, choice in self.tuned_defaults.items()
            if getattr(named, option, None) is None
        }

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
        self.check_sample(cfg, opts)
        sampling.check_declared(self.sampling, opts)
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


def _at_size(data: ImageDataset | None, size: int) -> ImageDataset | None:
    """``data`` with its images resized to ``size`` (what the model draws)."""
    if data is None or data.images.shape[-1] == size == data.images.shape[-2]:
        return data
    return dataclasses.replace(data, images=resize(data.images, size))


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
