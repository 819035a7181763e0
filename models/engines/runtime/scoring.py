"""What the engines' white-box membership scores share: the checks on the candidate
images and labels, and their batching (:meth:`.engine.RuntimeEngine.membership_scores`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

from models.engines.base import EngineError, Stopped, Trained
from models.engines.runtime import devices, pixels
from models.engines.runtime.sampling import iter_batches

BATCH = 256
"""Candidates per forward pass. Fixed, not sized to the device's free memory, so that the
seeded noise a score draws batch by batch is the same wherever it runs."""


def candidates(
    trained: Trained, images: torch.Tensor, labels: torch.Tensor, *, conditional: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """``images`` uint8 (n, c, h, w) at the model's image shape and the labels to score
    them under: ``labels`` int64 (n,) in [0, num_classes), or zeros (the one output an
    unconditional network has) when the model is unconditional. EngineError otherwise."""
    images, labels = torch.as_tensor(images), torch.as_tensor(labels)
    if images.dtype != torch.uint8 or tuple(images.shape[1:]) != tuple(trained.image_shape):
        raise EngineError(
            f"membership candidates must be uint8 (n, {', '.join(map(str, trained.image_shape))})"
            f" at the model's size, got {images.dtype} {tuple(images.shape)}"
        )
    if labels.shape != (len(images),):
        raise EngineError(
            f"membership candidates need one label each: {len(images)} images, labels of "
            f"shape {tuple(labels.shape)}"
        )
    if not conditional:
        return images, torch.zeros(len(images), dtype=torch.int64)
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= trained.num_classes):
        raise EngineError(
            f"membership candidates' labels must lie in [0, {trained.num_classes}), got "
            f"{int(labels.min())} to {int(labels.max())}"
        )
    return images, labels.to(torch.int64)


def batches(
    images: torch.Tensor,
    labels: torch.Tensor,
    device: torch.device,
    should_stop: Callable[[], bool],
) -> Iterator[tuple[slice, torch.Tensor, torch.Tensor]]:
    """(rows, x, y) over the candidates :data:`BATCH` at a time: x float32 (b, c, h, w) in
    [-1, 1] (the training's pixel scaling) and y int64 (b,), both on ``device``.
    Raises :class:`Stopped` when ``should_stop()`` turns true between batches."""
    for rows in iter_batches(len(images), BATCH):
        if should_stop():
            raise Stopped(f"membership scoring stopped after {rows.start} of {len(images)} images")
        x = pixels.to_unit_range(images[rows].to(device))
        yield rows, devices.channels_last(x, device), labels[rows].to(device)
