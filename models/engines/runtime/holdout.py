"""The held-out images a scored run is measured against (:mod:`.selection`).

A dataset's own other split when the caller gives one (worker/train.py does when it is
not the split users judge on), else a seeded slice of the training data, which the
optimiser then never sees. Either is cut to at most :data:`MOST` images, seeded.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from models.datasets import ImageDataset
from models.engines.base import EngineError

SHARE = 0.1
"""The share of the training data a slice takes."""
MOST = 1000
"""Held-out images at most: the FD of a few hundred generated images against more real
ones is limited by the generated side; more would only cost the optimiser data."""
FEWEST = 2
"""A slice smaller than this cannot give a covariance (FD); such data is refused."""


def slice_count(total: int) -> int:
    """How many of ``total`` training images the slice holds out."""
    return min(MOST, int(total * SHARE))


def slice_indices(total: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(held out, kept): the sorted rows of a ``total``-image training set that a run
    seeded ``seed`` sliced off, and the rest. The privacy audit calls this again on the
    model's lineage (``selection.held_out``) so that images the optimiser never saw are
    not counted as members."""
    count = slice_count(total)
    order = torch.randperm(total, generator=torch.Generator().manual_seed(seed))
    return order[:count].sort().values, order[count:].sort().values


def _subset(data: ImageDataset, index: torch.Tensor, split: str) -> ImageDataset:
    return dataclasses.replace(
        data, split=split, images=data.images[index], labels=data.labels[index]
    )


def held_out(
    data: ImageDataset, own: ImageDataset | None, seed: int
) -> tuple[ImageDataset, ImageDataset, dict[str, Any]]:
    """(what the optimiser trains on, the held-out images, how they were chosen).

    own: a held-out set of the caller's (kept whole up to :data:`MOST`); None: the
    slice, ``SHARE`` of ``data`` (at most ``MOST``) drawn by a generator seeded with
    ``seed`` (the run's), so a resumed run holds out the same images.
    """
    generator = torch.Generator().manual_seed(seed)
    if own is not None:
        order = torch.randperm(len(own), generator=generator)[:MOST]
        return (
            data,
            _subset(own, order.sort().values, own.split),
            {
                "source": "split",
                "split": own.split,
                "count": int(order.numel()),
                "of": len(own),
                "seed": seed,
            },
        )
    count = slice_count(len(data))
    if count < FEWEST or len(data) - count < 1:
        raise EngineError(
            f"scoring holds out {SHARE:.0%} of the training images, and {len(data)} are too "
            f"few to spare {FEWEST}; set eval_every 0 (and keep 'last')"
        )
    held, kept = slice_indices(len(data), seed)
    return (
        _subset(data, kept, data.split),
        _subset(data, held, data.split),
        {
            "source": "slice",
            "split": data.split,
            "count": count,
            "of": len(data),
            "seed": seed,
        },
    )
