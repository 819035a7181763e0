"""diffusers' ``DDIMPipeline`` sampling one of our trained ddpm models: the reference that
bench/solvers.py scores our samplers against (quality and speed)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from diffusers import DDIMPipeline, DDIMScheduler

from models.engines.base import Trained


class LabelledUNet(torch.nn.Module):
    """Our class-conditional UNet as ``DDIMPipeline`` calls it, ``unet(x, t)``: the labels
    of the batch (and the guidance, when the model has one) are fixed per call."""

    def __init__(self, unet: torch.nn.Module, labels: torch.Tensor, null: int, scale: float):
        super().__init__()
        self.unet, self.labels, self.null, self.scale = unet, labels, null, scale
        self.config = unet.config

    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.unet.parameters()).dtype

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> Any:
        if self.scale == 1.0:
            return self.unet(x, t, class_labels=self.labels)
        null = torch.full_like(self.labels, self.null)
        both = self.unet(torch.cat([x, x]), t, class_labels=torch.cat([self.labels, null])).sample
        cond, uncond = both.chunk(2)
        return type("Out", (), {"sample": uncond + self.scale * (cond - uncond)})()


def diffusers_ddim(
    trained: Trained, labels: torch.Tensor, seed: int, steps: int = 50
) -> torch.Tensor:
    """uint8 (n, c, h, w) from diffusers' DDIMPipeline (stock DDIMScheduler: the same
    linear β's as the model, clipped x̂_0, η 0), fp32, one batch."""
    scale = float(trained.config["sample_guidance_scale"])
    wrapper = LabelledUNet(trained.modules["unet"], labels, trained.num_classes, scale)
    pipeline = DDIMPipeline(unet=wrapper, scheduler=DDIMScheduler())
    pipeline.set_progress_bar_config(disable=True)
    with torch.inference_mode():
        out = pipeline(
            batch_size=len(labels),
            generator=torch.Generator().manual_seed(seed),
            num_inference_steps=steps,
            output_type="np",
        )
    return torch.from_numpy((out.images * 255).round().astype(np.uint8)).permute(0, 3, 1, 2)
