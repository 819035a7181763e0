"""The state every training run shares, and its part of a checkpoint.

An engine's run subclasses :class:`TrainingRun`: it builds its networks and optimisers in
``build``, takes one optimisation step in ``train_step`` and names what else a checkpoint
must hold in ``networks_state``; placing the data, seeding, the data order, the
data-parallel shard, the budget, the step count and the recent loss terms are here.
"""

from __future__ import annotations

import collections
import dataclasses
from abc import ABC, abstractmethod
from typing import Any, Generic, Protocol, TypeVar

import torch

from models.datasets import ImageDataset
from models.engine_options.base import PrivacyOptions
from models.engines import accel, distributed
from models.engines.base import EngineError
from models.engines.runtime import rng
from models.engines.runtime.budget import Budget
from models.engines.runtime.data_order import DataOrder
from models.engines.runtime.privacy import PoissonOrder, Private
from models.engines.runtime.resume import check_resume
from models.engines.runtime.selection import Selection


class RunConfig(Protocol):
    """The options every engine has (:class:`models.engine_options.base.CommonOptions`)."""

    @property
    def seed(self) -> int: ...
    @property
    def batch_size(self) -> int: ...
    @property
    def max_steps(self) -> int: ...
    @property
    def max_seconds(self) -> float | None: ...
    @property
    def privacy(self) -> PrivacyOptions | None: ...


ConfigT = TypeVar("ConfigT", bound=RunConfig)

RECENT_STEPS = 100
"""The final metrics average each loss term over this many last steps."""


class TrainingRun(ABC, Generic[ConfigT]):
    """Everything a training run mutates, so a checkpoint can capture and restore it.

    images: uint8 (n, c, s, s) and labels: int64 (n,), the whole training set: on the
    GPU when it fits, pinned when it does not, as is on CPU (accel.place_dataset).
    ``generator`` is seeded with the config's seed before ``build``, and every draw of
    the run comes from it or from the global RNGs seeded alike, but a private run's
    batches and noise, which come from a secret generator (:mod:`.privacy`).
    """

    engine: str
    """The engine's name, written into (and checked on) every checkpoint."""
    private_module: str | None = None
    """The attribute naming the network that sees the real data, which ``privacy`` trains
    with DP-SGD (:mod:`.privacy`); None: the engine cannot train privately. The networks
    that see the data only through it (a GAN's generator) and weight averages are
    post-processing: they cost no ε."""
    private_optimizer = "optimizer"
    """The attribute naming that network's optimiser (replaced by the private one)."""
    private_name = ""
    """That network as users know it (the privacy report's ``private_module``)."""

    def __init__(
        self, config: ConfigT, data: ImageDataset, images: torch.Tensor, device: torch.device
    ) -> None:
        self.config = config
        self.device = device
        self.images, self.labels = accel.place_dataset([images, data.labels], device)
        self.generator = rng.seed_everything(config.seed, device)
        self.build(data)
        self.order: DataOrder | PoissonOrder = DataOrder(
            len(images), config.batch_size, config.seed
        )
        # Data-parallel: this process trains on these rows of each global batch.
        self.shard = distributed.current()
        self.rows = self.shard.rows(config.batch_size)
        self.private: Private | None = None
        if config.privacy is not None:
            self._make_private(config.privacy, len(images))
        self.budget = Budget(config.max_steps, config.max_seconds)
        self.step = 0
        self.selection: Selection | None = None
        """Held-out scoring and the best weights so far (set by the engine; keep-best)."""
        self.recent: collections.deque[dict[str, float]] = collections.deque(maxlen=RECENT_STEPS)

    def private_steps(self) -> int:
        """Optimiser steps of the private network over the whole run (override where a
        training step takes several, as gan's ``n_critic``)."""
        return self.config.max_steps

    def _make_private(self, options: PrivacyOptions, n: int) -> None:
        """Make :attr:`private_module` differentially private (:class:`.privacy.Private`):
        its optimiser becomes Opacus's DPOptimizer, batches are Poisson-sampled, and every
        row of a batch is this process's (a private run is a single process)."""
        if self.private_module is None:
            raise EngineError(f"privacy: the {self.engine} engine cannot train privately")
        self.private = Private(
            options,
            module=getattr(self, self.private_module),
            optimizer=getattr(self, self.private_optimizer),
            name=self.private_name or self.private_module,
            n=n,
            batch_size=self.config.batch_size,
            steps=self.private_steps(),
            device=self.device,
        )
        setattr(self, self.private_optimizer, self.private.optimizer)
        self.order = self.private.order
        self.rows = slice(None)

    @abstractmethod
    def build(self, data: ImageDataset) -> None:
        """Build the networks and optimisers on ``self.device`` (global RNGs seeded)."""

    @abstractmethod
    def train_step(self) -> dict[str, float]:
        """One optimisation step: ``self.step += 1``, the step's loss terms appended to
        ``self.recent``; returns them with any diagnostics (lr, grad norms)."""

    @abstractmethod
    def stateful(self) -> dict[str, Any]:
        """The engine's part of a checkpoint by name: objects with ``state_dict`` and
        ``load_state_dict`` (networks, EMA, optimisers), or tensors restored in place."""

    def networks_state(self) -> dict[str, Any]:
        return {
            name: part if isinstance(part, torch.Tensor) else part.state_dict()
            for name, part in self.stateful().items()
        }

    def load_networks_state(self, state: dict[str, Any]) -> None:
        for name, part in self.stateful().items():
            if isinstance(part, torch.Tensor):
                part.copy_(state[name])
            else:
                part.load_state_dict(state[name])

    def state_dict(self) -> dict[str, Any]:
        """The whole checkpoint: who wrote it with which config (what
        :func:`.resume.check_resume` reads), the step, all that decides the next batch and
        noise draw (the run's generator, the global RNGs, the data order), the time spent,
        the recent loss terms, the engine's networks and, on a scored run, its evaluations
        and best weights so far."""
        return {
            "engine": self.engine,
            "config": dataclasses.asdict(self.config),  # type: ignore[call-overload]
            "step": self.step,
            "generator": self.generator.get_state(),
            "rng": rng.rng_state(),
            "data": self.order.state_dict(),
            "budget": self.budget.state_dict(),
            "recent": list(self.recent),
            **self.networks_state(),
            **({"privacy": self.private.state_dict()} if self.private is not None else {}),
            **({"selection": self.selection.state_dict()} if self.selection is not None else {}),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """:func:`.resume.check_resume`, then restore what :meth:`state_dict` wrote."""
        check_resume(self.engine, self.config, state)
        self.step = int(state["step"])
        self.generator.set_state(state["generator"])
        rng.set_rng_state(state["rng"])
        self.order.load_state_dict(state["data"])
        self.budget.load_state_dict(state["budget"])
        # ddpm checkpoints written before the runtime was shared kept bare loss values
        # under "recent_losses": a job resumed across that upgrade keeps its loss curve.
        recent = state.get("recent")
        if recent is None:
            recent = [{"loss": float(value)} for value in state.get("recent_losses", [])]
        self.recent.extend(recent)
        self.load_networks_state(state)
        if self.private is not None:
            self.private.load_state_dict(state["privacy"])
        if self.selection is not None:
            self.selection.load_state_dict(state["selection"])

    def progress_terms(self) -> dict[str, float]:
        """What the progress reports beside the step's own terms: the ε spent (private
        runs; :meth:`.privacy.Private.progress_epsilon`)."""
        return {"epsilon": self.private.progress_epsilon()} if self.private is not None else {}

    def metrics(self) -> dict[str, float]:
        """Steps run, seconds spent, and each loss term averaged over the recent steps."""
        metrics = {"steps": float(self.step), "seconds": self.budget.elapsed}
        for key in self.recent[-1] if self.recent else ():
            metrics[key] = sum(terms[key] for terms in self.recent) / len(self.recent)
        if self.private is not None:
            metrics["epsilon"] = self.private.epsilon()
        return metrics

    def privacy_report(self) -> dict[str, Any] | None:
        """The private run's report (:meth:`.privacy.Private.report`); None when not private."""
        return self.private.report() if self.private is not None else None
