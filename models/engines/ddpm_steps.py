"""ddpm's reverse process: the precomputed coefficients of each step of the DDIM (Song et
al. 2021, eq. 12 and 16) and ancestral DDPM (Ho et al. 2020, Algorithm 2) samplers, and the
classifier-free guided noise estimate (Ho & Salimans 2022, eq. 6)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class Step:
    """One reverse step x_t -> x_prev written as
    x̂_0 = clip((x_t - √(1-ᾱ_t) ε) / √ᾱ_t)  and  x_prev = a·x̂_0 + b·x_t + c·ε + σ·z."""

    t: torch.Tensor
    sqrt_one_minus_ab: float
    inv_sqrt_ab: float
    a: float
    b: float
    c: float
    sigma: float


def reverse_steps(
    ab: torch.Tensor, steps: int, sampler: str, eta: float, device: torch.device
) -> list[Step]:
    """The ``steps`` reverse steps, timesteps spaced t_i = i·⌊T/steps⌋ ("leading", as
    diffusers), ᾱ_prev = 1 after the last one so it returns x̂_0 itself."""
    stride = len(ab) // steps
    timesteps = [i * stride for i in reversed(range(steps))]
    plan = []
    for t in timesteps:
        ab_t = float(ab[t])
        ab_prev = float(ab[t - stride]) if t - stride >= 0 else 1.0
        beta = 1.0 - ab_t / ab_prev  # β of the respaced chain
        if sampler == "ddpm":
            # Ho et al. eq. (7): posterior mean μ̃(x_t, x̂_0) and variance β̃_t.
            a = math.sqrt(ab_prev) * beta / (1.0 - ab_t)
            b = math.sqrt(1.0 - beta) * (1.0 - ab_prev) / (1.0 - ab_t)
            c, sigma = 0.0, math.sqrt(beta * (1.0 - ab_prev) / (1.0 - ab_t))
        else:
            # Song et al. eq. (16): σ_t(η); eq. (12): the direction pointing to x_t.
            sigma = eta * math.sqrt((1.0 - ab_prev) / (1.0 - ab_t) * beta)
            a, b = math.sqrt(ab_prev), 0.0
            c = math.sqrt(max(1.0 - ab_prev - sigma**2, 0.0))
        plan.append(
            Step(
                t=torch.tensor(t, device=device),
                sqrt_one_minus_ab=math.sqrt(1.0 - ab_t),
                inv_sqrt_ab=1.0 / math.sqrt(ab_t),
                a=a,
                b=b,
                c=c,
                sigma=sigma,
            )
        )
    return plan


def predict_noise(
    unet: Callable[..., Any],
    x: torch.Tensor,
    t: torch.Tensor,
    y: torch.Tensor | None,
    scale: float | None,
) -> torch.Tensor:
    """ε estimate, float32 (b, c, h, w). With ``scale`` s, y holds [labels, ∅] and
    ε̃ = ε(x, ∅) + s·(ε(x, y) - ε(x, ∅))   (Ho & Salimans eq. 6 with s = 1 + w)."""
    if scale is None:
        return unet(x, t, class_labels=y, return_dict=False)[0].float()
    both = unet(torch.cat([x, x]), t, class_labels=y, return_dict=False)[0].float()
    conditional, unconditional = both.chunk(2)
    return torch.lerp(unconditional, conditional, scale)


def reverse_step(
    x: torch.Tensor, eps: torch.Tensor, step: Step, generator: torch.Generator
) -> torch.Tensor:
    """x_t -> x_prev, both (b, c, h, w); see :class:`Step`. Reuses buffers in place."""
    # x̂_0 = (x_t - √(1-ᾱ_t) ε) / √ᾱ_t, clipped to the data range   (Song et al. eq. 9)
    x0 = torch.sub(x, eps, alpha=step.sqrt_one_minus_ab).mul_(step.inv_sqrt_ab).clamp_(-1.0, 1.0)
    out = x0.mul_(step.a)
    if step.b:
        out.add_(x, alpha=step.b)
    if step.c:
        out.add_(eps, alpha=step.c)
    if step.sigma > 0:
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        out.add_(noise, alpha=step.sigma)
    return out
