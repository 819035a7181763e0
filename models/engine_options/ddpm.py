"""The ddpm engine's train and sampling options (the engine is :mod:`models.engines.ddpm`)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any, Literal, get_args

from pydantic import Field, ValidationInfo, field_validator
from pydantic.dataclasses import dataclass

from models.engine_options.base import (
    CONFIG,
    EVAL_EVERY_SLOW_SAMPLER,
    Bool,
    Float,
    Int,
    TrainOptions,
    eval_every_option,
    option,
    steps_text,
)
from models.engine_options.sampling import Precision, Refusal, SampleOptions, sample_option

SMALL = 28
"""Up to this size (digits, MNIST, Fashion-MNIST) the defaults are a 32-channel UNet with
one block per level, small batches and a high learning rate: on one CPU core it reaches
0.99 label agreement on digits in 150 s, where the larger net does ~90 steps and draws
noise (bench/quality.py, BENCHMARKS.md). Larger images get the usual GPU-scale UNet and
the learning rate of Ho et al."""


def downsamples(image_size: int) -> int | None:
    """How often the UNet halves ``image_size``: while the size stays even and the next
    resolution is at least 4, at most 4 times; None when that does not reach <= 8."""
    size, halvings = image_size, 0
    while size % 2 == 0 and size // 2 >= 4 and halvings < 4:
        size, halvings = size // 2, halvings + 1
    return halvings if image_size >= 8 and halvings >= 1 and size <= 8 else None


_BASE_CHANNELS = [(SMALL, 32), (None, 64)]

LEGACY_GUIDANCE = 2.0
"""The guidance scale every model saved before ``sample_guidance_scale`` sampled with."""

_GUIDANCE = [(16, LEGACY_GUIDANCE), (SMALL, 1.0), (None, LEGACY_GUIDANCE)]
"""Guidance by image size. Scale 2 serves digits at 16 px (label agreement 0.99); at 28 px
the small UNet's conditional and unconditional predictions disagree off the data, and any
guidance pulls the samples away from their class: MNIST at the 5,000 default steps scored
0.93 unguided against 0.24 at scale 2 and 0.04 at 3 (CPU), 0.60 against 0.16 on an H100
before norm_groups (BENCHMARKS.md, "ddpm at 28 px"). Above 28 px, the GPU-scale UNet, no
run says otherwise yet."""


def default_norm_groups(base_channels: int) -> int:
    """GroupNorm groups when the config names none: the most, up to 32, that divide
    ``base_channels`` and keep at least 4 channels in each (Ho et al.'s 128-channel UNet
    has 32 groups of 4). One channel per group, what 32 groups of a 32-channel UNet gave,
    normalises every channel on its own and drops its mean: the 28 px default drew
    digits on grey instead of black (bench/probe notes in BENCHMARKS.md)."""
    return max(g for g in range(1, 33) if base_channels % g == 0 and base_channels // g >= 4)


def legacy_norm_groups(base_channels: int) -> int:
    """The groups every model saved before ``norm_groups`` existed was built with."""
    return math.gcd(32, base_channels)


IMAGE_SIZES = tuple(s for s in range(8, 129) if downsamples(s) is not None)
"""Image sizes the UNet handles: 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, ..., 112, 128."""


def _channel_mult_steps() -> list[tuple[int | None, list[int]]]:
    # One level per halving, widths (1, 2, 2, ...): the halvings only grow with the size.
    steps: list[tuple[int | None, list[int]]] = []
    for size in IMAGE_SIZES:
        mult = [1, 2, 2, 2, 2][: (downsamples(size) or 0) + 1]
        if steps and steps[-1][1] == mult:
            steps[-1] = (size, mult)
        else:
            steps.append((size, mult))
    return [*steps[:-1], (None, steps[-1][1])]


Solver = Literal["dpm_solver_multistep", "unipc"]
"""diffusers' multistep ODE solvers (models/engines/ddpm_solvers.py): deterministic."""
Sampler = Literal["ddim", "ddpm", Solver]
SAMPLERS: tuple[str, ...] = ("ddim", "ddpm", *get_args(Solver))
"""Every ``sampler`` a ddpm model samples with: our DDIM and ancestral loops, and the solvers."""
SOLVERS: tuple[str, ...] = get_args(Solver)


@dataclass(config=CONFIG)
class DDPMSampleOptions(SampleOptions):
    """Sampling options of ddpm (a generate job's, a preview's ``config``)."""

    ENGINE = "ddpm"

    sampler: Sampler | None = sample_option(
        left_out="dpm_solver_multistep (ddim when eta is set)",
        help="ddim (Song et al.), ddpm (ancestral), dpm_solver_multistep (DPM-Solver++ 2M) "
        "or unipc (UniPC)",
    )
    steps: Int | None = sample_option(
        ge=1,
        le=5000,
        left_out="the sampler's: 5 for the solvers, 50 for ddim and ddpm",
        help="denoising steps, at most the model's num_train_timesteps",
    )
    guidance_scale: Float | None = sample_option(
        ge=0,
        le=100,
        left_out="the model's sample_guidance_scale",
        help="classifier-free guidance (1: none, 0: the unconditional model)",
    )
    eta: Float | None = sample_option(
        ge=0, le=1, left_out="0", help="ddim only: 0 deterministic, 1 as noisy as ddpm"
    )
    precision: Precision | None = sample_option(
        left_out="auto",
        help="auto (bf16 autocast on a GPU and on a CPU with native bf16) or fp32",
    )

    @field_validator("eta")
    @classmethod
    def _eta_is_ddims(cls, value: float | None, info: ValidationInfo) -> float | None:
        # ``sampler`` is declared before eta, so it is validated already.
        sampler = info.data.get("sampler")
        if value and sampler in SOLVERS:
            raise Refusal(
                "applies to sampler {ddim} only; {sampler} is deterministic (leave eta out, "
                "or pick {ddim})",
                ddim="ddim",
                sampler=sampler,
            )
        return value


@dataclass(config=CONFIG)
class DDPMConfig(TrainOptions):
    """Train options of ddpm: a class-conditional UNet predicting the noise, trained with
    label dropout for classifier-free guidance."""

    ENGINE = "ddpm"
    DATA_PARALLEL = True
    IMAGE_SIZES = IMAGE_SIZES
    SAMPLING_DEFAULTS = frozenset({"sample_guidance_scale"})

    eval_every: Int | None = eval_every_option(EVAL_EVERY_SLOW_SAMPLER)
    batch_size: Int | None = option(
        ge=1, le=4096, by_size=[(SMALL, 32), (None, 128)], help="images per step"
    )
    lr: Float | None = option(
        gt=0, le=10, by_size=[(SMALL, 1e-3), (None, 2e-4)], help="Adam learning rate"
    )
    warmup_steps: Int | None = option(
        ge=0,
        le=1_000_000,
        by_size=[(SMALL, 50), (None, 200)],
        help="steps of linear learning-rate warm-up",
    )
    grad_clip: Float = option(
        1.0, ge=0, le=1e6, help="clip the gradient's global norm to this; 0: off"
    )
    cfg_dropout: Float = option(
        0.1,
        ge=0,
        lt=1,
        help="share of steps trained without the label, for classifier-free guidance",
    )
    ema_decay: Float = option(
        0.999, ge=0, lt=1, help="decay of the weights' moving average that samples"
    )
    num_train_timesteps: Int = option(
        1000, ge=2, le=10_000, help="diffusion steps T of the noise schedule"
    )
    beta_schedule: Literal["linear", "cosine"] = option(
        "linear", help="noise schedule: linear (Ho et al.) or cosine (Nichol & Dhariwal)"
    )
    base_channels: Int | None = option(
        ge=8,
        le=512,
        multiple_of=8,
        by_size=_BASE_CHANNELS,
        help="UNet channels at full resolution (a multiple of 8)",
    )
    channel_mult: list[Annotated[int, Field(strict=True, ge=1, le=16)]] | None = option(
        min_length=2,
        max_length=5,
        by_size=_channel_mult_steps(),
        help="width multiplier per UNet level (one level per halving of the image)",
    )
    layers_per_block: Int | None = option(
        ge=1, le=4, by_size=[(SMALL, 1), (None, 2)], help="ResNet blocks per UNet level"
    )
    attention: Bool = option(
        True, help="self-attention at the lowest resolution and in the middle block"
    )
    sample_guidance_scale: Float | None = option(
        ge=0,
        le=100,
        by_size=_GUIDANCE,
        help="classifier-free guidance a generate job uses when it names none (a default; "
        "1: no guidance)",
    )
    norm_groups: Int | None = option(
        ge=1,
        le=32,
        help="GroupNorm groups in the UNet (must divide base_channels); null: the most, "
        "up to 32, that keep at least 4 channels in each",
    )

    @classmethod
    def saved(cls, values: Mapping[str, Any]) -> dict[str, Any]:
        # Models saved before norm_groups was an option were built with gcd(32, base).
        out = super().saved(values)
        if "norm_groups" not in out and isinstance(out.get("base_channels"), int):
            out["norm_groups"] = legacy_norm_groups(out["base_channels"])
        out.setdefault("sample_guidance_scale", LEGACY_GUIDANCE)  # sampled at 2 before
        return out

    def derive(self, values: dict[str, Any]) -> dict[str, Any]:
        if values["norm_groups"] is None:
            return {**values, "norm_groups": default_norm_groups(values["base_channels"])}
        return values

    def check(self) -> None:
        if self.norm_groups is not None:
            # Left out, base_channels is one of its defaults: the groups must divide each.
            named = self.base_channels is not None
            bases = [self.base_channels] if named else [w for _, w in _BASE_CHANNELS]
            if any(base % self.norm_groups for base in bases):
                what = (
                    f"base_channels {self.base_channels}"
                    if named
                    else f"the default base_channels ({steps_text(_BASE_CHANNELS)}); set it too"
                )
                raise ValueError(
                    f"norm_groups {self.norm_groups} does not divide {what}, or leave "
                    "norm_groups null"
                )
        if self.image_size is not None and self.channel_mult is not None:
            levels = len(self.channel_mult) - 1
            if self.image_size % 2**levels:
                raise ValueError(
                    f"image_size {self.image_size} cannot be halved {levels} times for "
                    f"channel_mult {self.channel_mult}; drop entries or leave it null"
                )
