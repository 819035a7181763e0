"""Typed train-job configs per engine, checked at submit so a mistyped or unknown option is
a 422 naming the field, never a failed job. Mirrors the engines' config dataclasses in
``models/engines`` (api/ may not import models/); tests/unit/test_catalog_sync.py keeps
the two equal. Values left out take the engine's defaults for the image size."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Betas = list[float]


class CommonTrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_steps: int | None = Field(default=None, ge=1, le=10_000_000)
    max_seconds: float | None = Field(default=None, gt=0, le=7 * 24 * 3600)
    batch_size: int | None = Field(default=None, ge=1, le=4096)
    image_size: int | None = Field(default=None, ge=4, le=512)
    conditional: bool | None = None
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    checkpoint_every: int | None = Field(default=None, ge=1)


class DDPMTrainConfig(CommonTrainConfig):
    lr: float | None = Field(default=None, gt=0, le=10)
    warmup_steps: int | None = Field(default=None, ge=0)
    grad_clip: float | None = Field(default=None, gt=0)
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
    gp_weight: float | None = Field(default=None, ge=0)
    label_smoothing: float | None = Field(default=None, gt=0, le=1)
    ema_decay: float | None = Field(default=None, ge=0, lt=1)


class EBMTrainConfig(CommonTrainConfig):
    width: int | None = Field(default=None, ge=4, le=1024)
    lr: float | None = Field(default=None, gt=0, le=10)
    betas: Betas | None = Field(default=None, min_length=2, max_length=2)
    alpha: float | None = Field(default=None, ge=0)
    ce_weight: float | None = Field(default=None, ge=0)
    data_noise: float | None = Field(default=None, ge=0)
    buffer_size: int | None = Field(default=None, ge=1, le=1_000_000)
    reinit_prob: float | None = Field(default=None, ge=0, le=1)
    langevin_steps: int | None = Field(default=None, ge=1, le=10_000)
    step_size: float | None = Field(default=None, gt=0)
    noise: float | None = Field(default=None, ge=0)
    grad_clip: float | None = Field(default=None, gt=0)
    sample_steps: int | None = Field(default=None, ge=1, le=100_000)
