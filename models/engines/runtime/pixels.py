"""Images between the uint8 the service stores and the [-1, 1] floats networks see."""

from __future__ import annotations

import torch


def to_unit_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 (n, c, h, w) in [0, 255] -> float32 (n, c, h, w) in [-1, 1]."""
    return images.to(torch.float32).div_(127.5).sub_(1.0)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """float (n, c, h, w) in [-1, 1] (clipped) -> uint8 (n, c, h, w) in [0, 255], on CPU."""
    return ((x.float().clamp(-1.0, 1.0) + 1.0) * 127.5).round_().to(torch.uint8).cpu()
