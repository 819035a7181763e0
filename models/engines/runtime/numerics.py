"""Numerical health of a step: gradient norms and the divergence check that turns a
NaN into a message saying what to change."""

from __future__ import annotations

import math

import torch

from models.engines.base import TrainingDiverged


def grad_norm(module: torch.nn.Module) -> torch.Tensor:
    """The L2 norm of all of ``module``'s gradients (what clip_grad_norm_ would clip)."""
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.nn.utils.get_total_norm(grads)


# --------------------------------------------------------------------------- divergence


def check_finite(
    name: str, value: torch.Tensor | float, hint: str, *, step: int | None = None
) -> None:
    """Raise :class:`TrainingDiverged` when ``value`` is NaN or infinite.

    ``hint`` tells the user what to change, e.g. "lower lr (now 0.1)".
    """
    number = float(value.detach()) if isinstance(value, torch.Tensor) else float(value)
    if math.isfinite(number):
        return
    where = f" at step {step}" if step is not None else ""
    raise TrainingDiverged(f"training diverged: {name} became {number}{where}; {hint}")
