"""Where a run computes: the device, bf16 autocast and memory format on CUDA; on CPU
everything stays fp32 and contiguous so runs are exact and reproducible."""

from __future__ import annotations

import contextlib
from typing import Any, TypeVar

import torch

from models.engines.base import EngineError


def pick_device(prefer: str | torch.device | None = None) -> torch.device:
    """CUDA when available, else CPU; ``prefer`` ("cpu", "cuda", "cuda:1") overrides."""
    if prefer is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(prefer)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise EngineError(f"device {str(device)!r} requested but CUDA is not available; use 'cpu'")
    if device.type not in ("cuda", "cpu"):
        raise EngineError(f"device {str(device)!r} is not supported; use 'cpu' or 'cuda'")
    return device


def autocast(device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast on CUDA; a no-op on CPU, where fp32 keeps runs exact and reproducible."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


ModuleOrTensor = TypeVar("ModuleOrTensor", torch.nn.Module, torch.Tensor)


def channels_last(x: ModuleOrTensor, device: torch.device) -> ModuleOrTensor:
    """Convert a conv net or an image batch to channels_last on CUDA (tensor cores want
    NHWC); on CPU return it unchanged so weights and results stay bitwise reproducible."""
    if device.type != "cuda":
        return x
    return x.to(memory_format=torch.channels_last)
