"""Exponential moving average of a network's weights, what engines sample from."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import torch

from models.engines.base import EngineError


class EMA:
    """Exponential moving average of a module's weights (Polyak averaging).

    ``decay`` is warmed up as ``min(decay, (1 + k) / (warmup + k))`` after ``k`` updates,
    so a short run is not dominated by its random initialisation. ``warmup`` 10 is the
    usual (TensorFlow's ExponentialMovingAverage): the average spans about k / 9 updates.
    ``warmup`` 2 makes it the mean of every weight so far (the initial ones weighing as two
    updates) until ``decay`` takes over.
    ``averaged`` is a frozen copy of the module holding the averaged weights.
    """

    def __init__(self, model: torch.nn.Module, decay: float = 0.999, warmup: int = 10) -> None:
        if not 0.0 <= decay < 1.0:
            raise EngineError(f"ema_decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.warmup = warmup
        self.num_updates = 0
        self.averaged = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.num_updates += 1
        decay = min(self.decay, (1 + self.num_updates) / (self.warmup + self.num_updates))
        ema_params = list(self.averaged.parameters())
        params = [p.detach() for p in model.parameters()]
        torch._foreach_lerp_(ema_params, params, 1.0 - decay)
        for ema_buffer, buffer in zip(self.averaged.buffers(), model.buffers(), strict=True):
            ema_buffer.copy_(buffer)

    def copy_to(self, model: torch.nn.Module) -> None:
        """Load the averaged weights into ``model`` (same architecture)."""
        model.load_state_dict(self.averaged.state_dict())

    def state_dict(self) -> dict[str, Any]:
        return {"averaged": self.averaged.state_dict(), "num_updates": self.num_updates}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.averaged.load_state_dict(state["averaged"])
        self.num_updates = int(state["num_updates"])
