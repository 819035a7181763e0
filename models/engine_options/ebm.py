"""The ebm engine's train and sampling options (the engine is :mod:`models.engines.ebm`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import Field
from pydantic.dataclasses import dataclass

from models.engine_options import convnets
from models.engine_options.base import (
    CONFIG,
    EVAL_EVERY_SLOW_SAMPLER,
    MAX_STEPS,
    Float,
    Int,
    TrainOptions,
    eval_every_option,
    option,
)
from models.engine_options.sampling import SampleOptions, sample_option

Beta = Annotated[float, Field(strict=True, ge=0, lt=1)]

SMALL = 16
"""Up to this size the Langevin chains keep the settings of Du & Mordatch (a pixel moves at
most 0.1 a step, 10 steps a training step, 60 from noise to sample): digits at 16 px reach
0.99 label agreement with them. At 28 px (MNIST) the same settings drew every class's digit
inside saturated salt-and-pepper noise that neither 200 sampling steps nor more Langevin
noise nor a 4× reinit rate removed (label agreement 0.10 at 900 CPU steps, and 0.10 after
5,000 on an H100). Letting a pixel move 0.3 a step (grad_clip 0.03, as in UvA's MNIST EBM
tutorial), 20 steps a training step and 400 from noise cleared the background: 0.77 at 900
CPU steps, but 0.18 after the default 5,000, where training has drifted. From 28 px the
energy also learns at lr 1e-4 (not 3e-4) and samples from its weights' average: 0.965 at
2,000 steps and 0.985 at 2,500, but the drift comes back after (0.82 at 3,000;
BENCHMARKS.md, "ebm at 28 px"), so from 28 px the default run is 2,000 steps, not 5,000."""


@dataclass(config=CONFIG)
class EBMSampleOptions(SampleOptions):
    """Sampling options of ebm: its Langevin chains from noise."""

    ENGINE = "ebm"

    steps: Int | None = sample_option(
        ge=1, le=5000, left_out="the model's sample_steps", help="Langevin steps from noise"
    )
    step_size: Float | None = sample_option(
        gt=0, le=1000, left_out="the model's step_size", help="λ of a Langevin step"
    )
    noise: Float | None = sample_option(
        ge=0, le=10, left_out="the model's noise", help="σ of a Langevin step's noise"
    )


@dataclass(config=CONFIG)
class EBMConfig(TrainOptions):
    """Train options of ebm: an energy E(x, y) = −f(x)[y] trained by contrastive
    divergence with Langevin chains kept in a replay buffer (Du & Mordatch 2019)."""

    ENGINE = "ebm"
    # Not data-parallel: its replay buffer of Langevin samples is per process.
    IMAGE_SIZES = convnets.IMAGE_SIZES
    SAMPLING_DEFAULTS = frozenset({"sample_steps"})

    max_steps: Int | None = option(  # type: ignore[assignment]
        ge=1,
        le=1_000_000,
        by_size=[(SMALL, MAX_STEPS), (None, 2000)],
        help="optimiser steps to train (the run's length); from 28 px the samples are best "
        "near 2,000 steps and drift after",
    )
    eval_every: Int | None = eval_every_option(EVAL_EVERY_SLOW_SAMPLER)
    batch_size: Int = option(64, ge=1, le=4096, help="images per step")
    width: Int | None = option(
        ge=4,
        le=1024,
        by_size=convnets.WIDTH,
        help="channels at full resolution; doubled per halving, capped at ×8",
    )
    lr: Float | None = option(
        gt=0, le=10, by_size=[(SMALL, 3e-4), (None, 1e-4)], help="Adam learning rate"
    )
    lr_schedule: Literal["constant", "cosine"] = option(
        "constant",
        help="the learning rate over the run: constant, or cosine (from lr down to 0 at max_steps)",
    )
    betas: list[Beta] = option(
        factory=lambda: [0.0, 0.999], min_length=2, max_length=2, help="Adam (β1, β2)"
    )
    alpha: Float = option(1.0, ge=0, le=1e6, help="weight α of the energy regulariser α(E+² + E−²)")
    ce_weight: Float = option(
        0.1, ge=0, le=1e6, help="weight of −log p(y | x) on real pairs (conditional); 0: off"
    )
    data_noise: Float = option(
        0.01, ge=0, le=10, help="σ of the Gaussian noise added to real images"
    )
    buffer_size: Int | None = option(
        ge=1,
        le=1_000_000,
        by_size=[(32, 10_000), (None, 2_000)],
        help="Langevin chains kept in the replay buffer (at least batch_size; it is part "
        "of every checkpoint)",
    )
    reinit_prob: Float = option(
        0.05, ge=0, le=1, help="chance a chain restarts from noise at each step"
    )
    langevin_steps: Int | None = option(
        ge=1,
        le=10_000,
        by_size=[(SMALL, 10), (None, 20)],
        help="Langevin steps per training step",
    )
    step_size: Float = option(
        10.0, gt=0, le=1000, help="λ: a Langevin step is λ·clip(∇ₓE), at most λ·grad_clip"
    )
    noise: Float = option(0.01, ge=0, le=10, help="σ of a Langevin step's noise")
    grad_clip: Float | None = option(
        gt=0,
        le=1e6,
        by_size=[(SMALL, 0.01), (None, 0.03)],
        help="each pixel of ∇ₓE is clipped to [−grad_clip, grad_clip]",
    )
    ema_decay: Float | None = option(
        ge=0,
        lt=1,
        by_size=[(SMALL, 0.0), (None, 0.999)],
        help="decay of the energy's weights' moving average that samples; 0: the last weights",
    )
    sample_steps: Int | None = option(
        ge=1,
        le=100_000,
        by_size=[(SMALL, 60), (None, 400)],
        help="Langevin steps from noise when sampling (a default)",
    )

    @classmethod
    def saved(cls, values: Mapping[str, Any]) -> dict[str, Any]:
        # Models and checkpoints from before ema_decay sampled the last weights.
        return {"ema_decay": 0.0, **super().saved(values)}

    def check(self) -> None:
        if self.buffer_size is not None and self.buffer_size < self.batch_size:
            raise ValueError(f"buffer_size must be at least batch_size ({self.batch_size})")

    def privacy_refusal(self) -> str | None:
        # The replay buffer and the Langevin chains would be honest (they start from noise
        # and see only the weights), but the energy net has spectral norm on every layer.
        return (
            "the ebm engine cannot train privately: its energy network has spectral norm on "
            "every layer, through which Opacus cannot take each example's gradient; use "
            "engine ddpm, or gan with variant 'vanilla'"
        )

    def derive(self, values: dict[str, Any]) -> dict[str, Any]:
        # A derived buffer holds at least one batch, so no batch size is refused for it.
        return {**values, "buffer_size": max(values["buffer_size"], values["batch_size"])}
