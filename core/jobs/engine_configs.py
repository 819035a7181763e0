"""Typed train-job configs per engine, checked at submit so a mistyped or unknown option is
a 422 naming the field, never a failed job. Mirrors the engines' config dataclasses in
``models/engines`` (api/ may not import models/); tests/unit/test_catalog_sync.py keeps
the two equal. Values left out take the engine's defaults for the image size."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from core.jobs.numbers import JsonNumbers

Betas = list[float]

MAX_TRAIN_WORK = 10**12
"""Bound of max_steps × batch_size × image_size² (pixels through the network): a
million steps of 128 images at 88 px, so no single request asks for unbounded work.
Options left out count at the largest default an engine takes (5,000 steps, batch 128,
32 px)."""


class CommonTrainConfig(JsonNumbers):
    model_config = ConfigDict(extra="forbid", strict=True)

    max_steps: int | None = Field(default=None, ge=1, le=1_000_000)
    max_seconds: float | None = Field(default=None, gt=0, le=7 * 24 * 3600)
    batch_size: int | None = Field(default=None, ge=1, le=4096)
    image_size: int | None = Field(default=None, ge=4, le=512)
    conditional: bool | None = None
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    checkpoint_every: int | None = Field(default=None, ge=1, le=1_000_000)

    @model_validator(mode="after")
    def _bounded_work(self) -> CommonTrainConfig:
        work = (self.max_steps or 5000) * (self.batch_size or 128) * (self.image_size or 32) ** 2
        if work > MAX_TRAIN_WORK:
            raise ValueError(
                f"max_steps × batch_size × image_size² is {work:.3g}, over the limit of "
                f"{MAX_TRAIN_WORK:.0e}; lower one of them"
            )
        return self


class DDPMTrainConfig(CommonTrainConfig):
    lr: float | None = Field(default=None, gt=0, le=10)
    warmup_steps: int | None = Field(default=None, ge=0, le=1_000_000)
    grad_clip: float | None = Field(default=None, gt=0, le=1e6)
    cfg_dropout: float | None = Field(default=None, ge=0, le=1)
    ema_decay: float | None = Field(default=None, ge=0, lt=1)
    num_train_timesteps: int | None = Field(default=None, ge=10, le=10_000)
    beta_schedule: Literal["linear", "cosine"] | None = None
    base_channels: int | None = Field(default=None, ge=8, le=512)
    channel_mult: list[int] | None = Field(default=None, min_length=1, max_length=6)
    layers_per_block: int | None = Field(default=None, ge=1, le=4)
    attention: bool | None = None


class GANTrainConfig(CommonTrainConfig):
    variant: Literal["dcgan", "vanilla", "wgan-gp"] | None = None
    z_dim: int | None = Field(default=None, ge=1, le=4096)
    width: int | None = Field(default=None, ge=4, le=1024)
    upsample: Literal["transposed", "nearest"] | None = None
    lr_g: float | None = Field(default=None, gt=0, le=10)
    lr_d: float | None = Field(default=None, gt=0, le=10)
    betas: Betas | None = Field(default=None, min_length=2, max_length=2)
    n_critic: int | None = Field(default=None, ge=1, le=100)
    gp_weight: float | None = Field(default=None, ge=0, le=1e6)
    label_smoothing: float | None = Field(default=None, gt=0, le=1)
    ema_decay: float | None = Field(default=None, ge=0, lt=1)


class EBMTrainConfig(CommonTrainConfig):
    width: int | None = Field(default=None, ge=4, le=1024)
    lr: float | None = Field(default=None, gt=0, le=10)
    betas: Betas | None = Field(default=None, min_length=2, max_length=2)
    alpha: float | None = Field(default=None, ge=0, le=1e6)
    ce_weight: float | None = Field(default=None, ge=0, le=1e6)
    data_noise: float | None = Field(default=None, ge=0, le=10)
    buffer_size: int | None = Field(default=None, ge=1, le=1_000_000)
    reinit_prob: float | None = Field(default=None, ge=0, le=1)
    langevin_steps: int | None = Field(default=None, ge=1, le=10_000)
    step_size: float | None = Field(default=None, gt=0, le=1000)
    noise: float | None = Field(default=None, ge=0, le=10)
    grad_clip: float | None = Field(default=None, gt=0, le=1e6)
    sample_steps: int | None = Field(default=None, ge=1, le=100_000)
