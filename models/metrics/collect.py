"""One streaming pass over an image source: per extractor, running statistics of every
feature (for FD) and a seeded uniform sample of at most ``keep`` items (features, labels and
optionally images, for KID, precision/recall, t-SNE and the utility classifiers).

Memory is bounded by ``keep`` whatever the number of images, so 50,000 samples cost the
same as 10,000 plus the (d, d) running sums.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from models.datasets import ImageDataset
from models.engines.base import Stopped
from models.metrics.features import FeatureExtractor
from models.metrics.frechet import RunningStats

BatchHook = Callable[[torch.Tensor, torch.Tensor, dict[str, tuple[np.ndarray, np.ndarray]]], None]
"""Called per batch with (images, labels, {extractor tag: (features, logits)})."""


class Reservoir:
    """Slots for a uniform sample of at most ``capacity`` items of a stream of unknown
    length (Vitter's Algorithm R), drawn with a seeded generator."""

    def __init__(self, capacity: int, seed: int) -> None:
        self.capacity = capacity
        self.seen = 0
        self._rng = np.random.default_rng(seed)

    def offer(self, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """(positions in the batch, slots they overwrite), each (m,)."""
        index = np.arange(self.seen, self.seen + batch_size)
        self.seen += batch_size
        # Item i takes slot i while there is room, then slot j ~ U[0, i] if j < capacity.
        slots = np.where(index < self.capacity, index, self._rng.integers(0, index + 1))
        positions = np.flatnonzero(slots < self.capacity)
        slots = slots[positions]
        # Two items of one batch may draw the same slot; the later one wins, as in a
        # one-at-a-time pass.
        _, last_from_end = np.unique(slots[::-1], return_index=True)
        winners = len(slots) - 1 - last_from_end
        return positions[winners], slots[winners]


@dataclass
class FeatureSet:
    """What a pass over ``count`` images kept.

    stats: {extractor tag: RunningStats} over all images.
    features: {extractor tag: float32 (m, dim)} for the m = min(count, keep) kept items.
    labels: int64 (m,); images: uint8 (m, c, h, w) when asked for, else None.
    """

    count: int
    stats: dict[str, RunningStats]
    features: dict[str, np.ndarray]
    labels: np.ndarray
    images: torch.Tensor | None


def collect(
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    extractors: Sequence[FeatureExtractor],
    *,
    keep: int,
    seed: int,
    keep_images: bool = False,
    on_batch: BatchHook | None = None,
    progress: Callable[[int], None] = lambda done: None,
    should_stop: Callable[[], bool] = lambda: False,
) -> FeatureSet:
    """Run every extractor over ``batches`` of (uint8 (b, c, h, w), int64 (b,))."""
    reservoir = Reservoir(keep, seed)
    stats = {e.tag: RunningStats(e.dim) for e in extractors}
    # Buffers grow as the reservoir fills, so a 300-image test split does not allocate
    # room for ``keep`` Inception features.
    kept = {e.tag: np.zeros((0, e.dim), dtype=np.float32) for e in extractors}
    labels = np.zeros(0, dtype=np.int64)
    images: torch.Tensor | None = None
    for batch, batch_labels in batches:
        if should_stop():
            raise Stopped()
        outputs = {e.tag: e.with_logits(batch) for e in extractors}
        positions, slots = reservoir.offer(batch.shape[0])
        filled = min(reservoir.seen, keep)
        for tag, (features, _) in outputs.items():
            stats[tag].update(features)
            kept[tag] = _grown(kept[tag], filled)
            kept[tag][slots] = features[positions]
        labels = _grown(labels, filled)
        labels[slots] = batch_labels.cpu().numpy()[positions]
        if keep_images:
            if images is None:
                images = torch.zeros((0, *batch.shape[1:]), dtype=torch.uint8)
            images = torch.from_numpy(_grown(images.numpy(), filled))
            images[torch.from_numpy(slots)] = batch[torch.from_numpy(positions)].cpu()
        if on_batch is not None:
            on_batch(batch, batch_labels, outputs)
        progress(reservoir.seen)
    return FeatureSet(
        count=reservoir.seen, stats=stats, features=kept, labels=labels, images=images
    )


def _grown(buffer: np.ndarray, rows: int) -> np.ndarray:
    """``buffer`` with at least ``rows`` rows; new rows are zero until written."""
    if buffer.shape[0] >= rows:
        return buffer
    extra = np.zeros((rows - buffer.shape[0], *buffer.shape[1:]), dtype=buffer.dtype)
    return np.concatenate([buffer, extra])


def dataset_batches(
    images: torch.Tensor, labels: torch.Tensor, batch_size: int
) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
    """An in-memory dataset as the same kind of batch stream a generator produces."""
    for start in range(0, images.shape[0], batch_size):
        yield images[start : start + batch_size], labels[start : start + batch_size]


def dataset_pass(
    data: ImageDataset,
    extractors: Sequence[FeatureExtractor],
    *,
    keep: int,
    batch_size: int,
    seed: int,
    on_batch: BatchHook | None = None,
    progress: Callable[[int], None] = lambda done: None,
    should_stop: Callable[[], bool] = lambda: False,
) -> FeatureSet:
    """:func:`collect` over an in-memory dataset, in batches of ``batch_size``."""
    return collect(
        dataset_batches(data.images, data.labels, batch_size),
        extractors,
        keep=keep,
        seed=seed,
        on_batch=on_batch,
        progress=progress,
        should_stop=should_stop,
    )
