"""ddpm's white-box membership score: minus each candidate's own training loss.

A diffusion model predicts the noise of the images it was fitted to better than that of
others (Carlini et al. 2023, "Extracting Training Data from Diffusion Models", §6; Hu &
Pang 2023, "Membership Inference of Diffusion Models"). Ho et al. 2020's equations.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from models.engines.runtime import scoring

TIMESTEPS = (0.05, 0.10, 0.15, 0.20)
"""Where the membership score reads the loss, as shares of the T training timesteps:
t = 50, 100, 150, 200 of 1,000 (PRIVACY-ANCHORS.md). Near t = 0 the noise is too slight to
tell a fitted image from another, near T it swamps both."""
DRAWS = 2
"""Noise draws ε per timestep: the score averages 4 × 2 losses per candidate."""


def loss_scores(
    unet: torch.nn.Module,
    alphas_cumprod: torch.Tensor,
    images: torch.Tensor,
    labels: torch.Tensor | None,
    *,
    seed: int,
    should_stop: Callable[[], bool] = lambda: False,
) -> np.ndarray:
    """−(the training loss of each candidate), higher for images the model was fitted to.

    1. x_0: the candidate in [-1, 1]; for t in :data:`TIMESTEPS` (× T, T = the length of
       ``alphas_cumprod``) and :data:`DRAWS` draws ε ~ N(0, I), drawn on the CPU from
       ``seed`` so every device scores with the same noise:
    2. x_t = √ᾱ_t x_0 + √(1-ᾱ_t) ε   (eq. 4, the training's own forward process)
    3. score = −mean over (t, ε) of the per-pixel mean of (ε − ε_θ(x_t, t, y))²
       (eq. 14), with the candidate's label y (``labels`` None: unconditional), in float32.
    Shapes: images uint8 (n, c, h, w), labels int64 (n,) → float64 (n,).
    """
    unet = unet.eval()
    device = next(unet.parameters()).device
    count = len(alphas_cumprod)
    timesteps = sorted({min(count - 1, round(share * count)) for share in TIMESTEPS})
    generator = torch.Generator().manual_seed(seed)
    given = labels if labels is not None else torch.zeros(len(images), dtype=torch.int64)
    scores = np.empty(len(images), dtype=np.float64)
    with torch.inference_mode():
        for rows, x0, y in scoring.batches(images, given, device, should_stop):
            loss = torch.zeros(len(x0), device=device)
            for t in timesteps:
                t_batch, ab_t = torch.full((len(x0),), t, device=device), float(alphas_cumprod[t])
                for _ in range(DRAWS):
                    noise = torch.randn(x0.shape, generator=generator).to(device)
                    x_t = math.sqrt(ab_t) * x0 + math.sqrt(1.0 - ab_t) * noise
                    y_in = y if labels is not None else None
                    predicted = unet(x_t, t_batch, class_labels=y_in, return_dict=False)[0]
                    loss += (predicted.float() - noise).pow(2).flatten(1).mean(dim=1)
            scores[rows] = -(loss / (len(timesteps) * DRAWS)).double().cpu().numpy()
    return scores
