"""Image classifiers for the metrics: the dataset classifier behind "FD (<dataset>
classifier)" and class coverage, and the classifiers of the utility experiment.

The default is a small CNN (two conv stages, a 128-d penultimate layer) that trains in
seconds on CPU for 8-32 px images; ``resnet18`` (torchvision's, optionally from
pretrained weights) is there for larger images when torchvision is installed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the conventional alias
from safetensors.torch import load_file
from torch import nn

from models.engines.base import Stopped
from models.metrics.errors import MetricsError

PENULTIMATE_DIM = 128

M = TypeVar("M", bound=nn.Module)


@dataclass(frozen=True)
class ClassifierConfig:
    arch: Literal["small_cnn", "resnet18"] = "small_cnn"
    epochs: int = 10
    min_steps: int = 300
    """Tiny training sets (5 images per class) still get this many optimiser steps."""
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    width: int = 16
    """Channels of the small CNN's first stage (the second has twice as many)."""
    resnet18_weights: Path | None = None
    """ImageNet weights for ``resnet18`` (a torchvision state dict); its fc is replaced."""

    def steps(self, n_train: int) -> int:
        return max(self.min_steps, self.epochs * math.ceil(n_train / self.batch_size))


class SmallCNN(nn.Module):
    """x: uint8-range float (n, c, h, w) scaled to [-1, 1] -> logits (n, num_classes).

    :meth:`features` gives the 128-d penultimate activations used for Fréchet distance.
    """

    def __init__(self, in_channels: int, num_classes: int, width: int = 16) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(),
            nn.Conv2d(2 * width, 2 * width, 3, padding=1),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(),
            # A fixed 4x4 grid makes the head independent of the image size (8 px upwards).
            nn.AdaptiveAvgPool2d(4),
            nn.Flatten(),
            nn.Linear(2 * width * 16, PENULTIMATE_DIM),
            nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(PENULTIMATE_DIM, num_classes))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(n, c, h, w) -> (n, 128)"""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def to_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 (n, c, h, w) -> float (n, c, h, w) in [-1, 1]."""
    return images.float() / 127.5 - 1.0


def build(config: ClassifierConfig, in_channels: int, num_classes: int) -> nn.Module:
    """A freshly initialised classifier (uses the global torch RNG: seed it first)."""
    if config.arch == "small_cnn":
        return SmallCNN(in_channels, num_classes, config.width)
    if config.arch == "resnet18":
        return _resnet18(config, in_channels, num_classes)
    raise MetricsError(f"unknown classifier arch {config.arch!r}; use 'small_cnn' or 'resnet18'")


class _ResNetInput(nn.Module):
    """Grayscale -> 3 channels and at least 32 px, so ImageNet weights and 5 poolings fit."""

    def __init__(self, net: nn.Module, in_channels: int) -> None:
        super().__init__()
        self.net = net
        self.in_channels = in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.in_channels == 1:
            x = x.repeat(1, 3, 1, 1)
        if min(x.shape[-2:]) < 32:
            x = F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False)
        return self.net(x)


def _resnet18(config: ClassifierConfig, in_channels: int, num_classes: int) -> nn.Module:
    try:
        from torchvision.models import resnet18
    except ImportError as e:  # the CUDA wheel on PyPI fails to import on torch+cpu too
        raise MetricsError(
            "classifier arch 'resnet18' needs torchvision, which is not importable here "
            f"({e}); install the torchvision build matching torch (for torch 2.13.0+cpu: "
            "torchvision==0.28.0+cpu from https://download.pytorch.org/whl/cpu) or use "
            "arch='small_cnn'"
        ) from e
    if in_channels not in (1, 3):
        raise MetricsError(f"resnet18 takes 1- or 3-channel images, got {in_channels}")
    net = resnet18(weights=None)
    if config.resnet18_weights is not None:
        net.load_state_dict(_read_state_dict(config.resnet18_weights))
    net.fc = nn.Linear(net.fc.in_features, num_classes)
    return _ResNetInput(net, in_channels)


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if not path.exists():
        raise MetricsError(f"resnet18 weights not found at {path}")
    if path.suffix == ".safetensors":
        return load_file(str(path))
    return torch.load(path, map_location="cpu", weights_only=True)


def train_classifier(
    make: Callable[[], M],
    images: torch.Tensor,
    labels: torch.Tensor,
    config: ClassifierConfig,
    seed: int,
    should_stop: Callable[[], bool] = lambda: False,
    device: torch.device | str = "cpu",
) -> M:
    """Train ``make()`` on uint8 images (n, c, h, w) with int64 labels (n,).

    ``make`` builds the untrained network; it runs under the seeded RNG, so initialisation
    and batch order are reproducible (on CPU) and the global RNG state is left as it was.
    Returns the network in eval mode on ``device``.
    """
    n = images.shape[0]
    if n < 2:
        raise MetricsError(f"a classifier needs at least 2 training images, got {n}")
    batch = min(config.batch_size, n)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = make().to(device).train()
        optimiser = torch.optim.AdamW(
            model.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
        # Epochs of a fresh permutation each, dropping the last partial batch (batch norm
        # and a steady step size both want full batches).
        order, cursor = torch.randperm(n), 0
        for _ in range(config.steps(n)):
            if should_stop():
                raise Stopped()
            if cursor + batch > n:
                order, cursor = torch.randperm(n), 0
            idx = order[cursor : cursor + batch]
            cursor += batch
            logits = model(to_input(images[idx].to(device)))
            loss = F.cross_entropy(logits, labels[idx].long().to(device))
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
    return model.eval()


@torch.inference_mode()
def predict(model: nn.Module, images: torch.Tensor, batch_size: int = 512) -> np.ndarray:
    """uint8 (n, c, h, w) -> logits float32 (n, num_classes), on the model's device."""
    device = next(model.parameters()).device
    return np.concatenate(
        [
            model(to_input(images[i : i + batch_size].to(device))).cpu().numpy()
            for i in range(0, images.shape[0], batch_size)
        ]
    )


def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of images (n, c, h, w) whose argmax logit equals labels (n,)."""
    return float((predict(model, images).argmax(axis=1) == labels.numpy()).mean())
