"""What the handlers that sample an engine in shards share (generate, evaluate): which
class each image gets, the shards a count is cut into and the seed of each."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import NamedTuple

import numpy as np

from models.errors import Stopped

SAMPLE_BATCH = 256
"""Images an engine samples together inside a shard. It is every engine's default, passed
explicitly so that progress inside a shard can count the images of finished batches."""


def label_plan(
    labels: list[int] | None, count: int, num_classes: int, conditional: bool
) -> np.ndarray | None:
    """One class per image: as given, cycled from a class list, or all classes evenly."""
    if not conditional:
        return None
    if labels is None:
        return np.arange(count, dtype=np.int64) % num_classes
    if len(labels) == count:
        return np.asarray(labels, dtype=np.int64)
    return np.asarray(labels, dtype=np.int64)[np.arange(count) % len(labels)]


def shard_seed(seed: int, shard: int) -> int:
    # Distinct, reproducible streams per shard: the same request makes the same images.
    return (seed * 1_000_003 + shard) % (2**63 - 1)


class Shard(NamedTuple):
    number: int
    start: int
    size: int
    seed: int
    labels: np.ndarray | None
    """The plan's classes of this shard's images, None for an unconditional model."""


def shards(
    count: int,
    shard_size: int,
    *,
    seed: int,
    plan: np.ndarray | None,
    should_stop: Callable[[], bool],
) -> Iterator[Shard]:
    """The shards of ``count`` images in order; raises Stopped before the next shard once
    ``should_stop()`` is true (a shard is minutes of sampling on a CPU)."""
    for number, start in enumerate(range(0, count, shard_size)):
        if should_stop():
            raise Stopped
        size = min(shard_size, count - start)
        labels = None if plan is None else plan[start : start + size]
        yield Shard(number, start, size, shard_seed(seed, number), labels)
