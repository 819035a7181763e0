"""Exact k nearest neighbours in ℓ2 by blocked matrix products.

‖q − p‖² = ‖q‖² − 2 q·p + ‖p‖²: one (block × m) product per block of queries, so 10,000
queries against 60,000 pool rows never hold more than ``block × m`` distances at once.
The privacy audit (memorization, membership inference) asks this of every image it scores.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from models.errors import Stopped

DEFAULT_BLOCK = 1024
"""Queries per product: 1,024 × 60,000 float32 distances is 245 MB."""


@dataclass(frozen=True)
class Neighbours:
    """For each query row, its ``k`` nearest pool rows, nearest first.

    distances: float32 (n, k), ℓ2 (not squared); indices: int64 (n, k) into the pool.
    """

    distances: np.ndarray
    indices: np.ndarray


def nearest(
    queries: torch.Tensor,
    pool: torch.Tensor,
    k: int,
    *,
    block: int = DEFAULT_BLOCK,
    exclude_self: bool = False,
    should_stop: Callable[[], bool] = lambda: False,
) -> Neighbours:
    """The ``k`` nearest rows of ``pool`` (m, d) to each row of ``queries`` (n, d), exact.

    exclude_self: ``queries`` is ``pool`` (the same rows in the same order) and a row is
    not its own neighbour (real-vs-real distances, Alaa et al.'s authenticity).
    Rows are flattened and computed in float32 (float64 where given float64).
    """
    q = _rows(queries)
    p = _rows(pool)
    if q.shape[1] != p.shape[1]:
        raise ValueError(f"queries have {q.shape[1]} dimensions, the pool {p.shape[1]}")
    if k < 1 or k > len(p) - (1 if exclude_self else 0):
        raise ValueError(f"k={k} nearest of a pool of {len(p)} rows")
    pool_sq = (p * p).sum(dim=1)
    distances, indices = [], []
    with torch.inference_mode():
        for start in range(0, len(q), block):
            if should_stop():
                raise Stopped()
            rows = q[start : start + block]
            squared = (rows * rows).sum(dim=1, keepdim=True) - 2.0 * rows @ p.T + pool_sq
            if exclude_self:
                own = torch.arange(start, start + len(rows))
                squared[torch.arange(len(rows)), own] = float("inf")
            values, index = torch.topk(squared, k, dim=1, largest=False, sorted=True)
            distances.append(values.clamp_min_(0.0).sqrt_())
            indices.append(index)
    return Neighbours(
        distances=torch.cat(distances).cpu().numpy(),
        indices=torch.cat(indices).cpu().numpy().astype(np.int64),
    )


def _rows(x: torch.Tensor) -> torch.Tensor:
    x = x.reshape(len(x), -1)
    return x if x.dtype == torch.float64 else x.to(torch.float32)


DEFAULT_SHIFT_BLOCK = 256
"""Queries per product in :func:`nearest_shifted`."""
DEFAULT_SHIFT_CHUNK = 8192
"""Pool rows per product in :func:`nearest_shifted`: 256 × 8,192 int32 distances are 8 MB,
so the 9 shifts' running minimum is taken in cache, not in memory."""


def nearest_shifted(
    queries: torch.Tensor,
    pool: torch.Tensor,
    k: int,
    *,
    shift: int = 1,
    block: int = DEFAULT_SHIFT_BLOCK,
    chunk: int = DEFAULT_SHIFT_CHUNK,
    should_stop: Callable[[], bool] = lambda: False,
) -> Neighbours:
    """The ``k`` nearest images of ``pool`` (m, c, h, w) to each of ``queries`` (n, c, h, w),
    exact, under the ℓ2 distance that forgives a small translation of the query:

        D(q, p) = min over (dy, dx) in {-shift … shift}² of ‖T(dy, dx) q − p‖₂

    where T moves the image down ``dy`` and right ``dx`` pixels and the rows and columns that
    enter are black (0). A copy moved by one pixel is at D = 0 from its original, where a
    plain ℓ2 puts a thin stroke farther from its own shifted copy than from other digits.
    ``shift=0`` is the plain ℓ2 of :func:`nearest`.

    Cost: (2·shift + 1)² products instead of one. Images whose values are all multiples of
    1/255 in [0, 1] (uint8 pixels, the audit's case) on the CPU are multiplied as int8
    (value − 128: ‖q − p‖ is unchanged by the common offset) with int32 sums, which is exact
    and about 3× faster than float32 on CPUs with int8 dot products (AVX-512 VNNI); other
    inputs are multiplied in float32 as in :func:`nearest`.
    """
    if queries.ndim != 4 or pool.ndim != 4 or queries.shape[1:] != pool.shape[1:]:
        raise ValueError(
            f"images (n, c, h, w) of one shape, got {tuple(queries.shape)} and {tuple(pool.shape)}"
        )
    if k < 1 or k > len(pool):
        raise ValueError(f"k={k} nearest of a pool of {len(pool)} rows")
    if shift < 0:
        raise ValueError(f"shift must be 0 or more pixels, got {shift}")
    exact = (
        queries.device.type == "cpu"
        and 3 * 128**2 * queries[0].numel() < 2**31  # int32 holds ‖q‖² − 2 q·p
        and _levels(queries)
        and _levels(pool)
    )
    encode = _int8 if exact else _float32
    p = encode(pool).reshape(len(pool), -1)
    pool_sq = _squared_norms(p)
    moves = [(dy, dx) for dy in range(-shift, shift + 1) for dx in range(-shift, shift + 1)]
    distances, indices = [], []
    with torch.inference_mode():
        for start in range(0, len(queries), block):
            if should_stop():
                raise Stopped()
            rows = encode(queries[start : start + block])
            black = -128 if exact else 0
            moved = [_translate(rows, dy, dx, black).reshape(len(rows), -1) for dy, dx in moves]
            moved_sq = [_squared_norms(q)[:, None] for q in moved]
            values, index = [], []
            for first in range(0, len(p), chunk):
                part = p[first : first + chunk]
                best = None
                for q, q_sq in zip(moved, moved_sq, strict=True):
                    # ‖q‖² − 2 q·p, the ‖p‖² common to every shift added once below
                    squared = _product(q, part)
                    torch.sub(q_sq, squared, alpha=2, out=squared)
                    best = squared if best is None else torch.minimum(best, squared, out=best)
                best += pool_sq[first : first + chunk]
                v, i = torch.topk(best, min(k, len(part)), dim=1, largest=False, sorted=False)
                values.append(v)
                index.append(i + first)
            v, order = torch.topk(torch.cat(values, 1), k, dim=1, largest=False, sorted=True)
            squared = v.to(torch.float64) / (255.0**2) if exact else v
            distances.append(squared.clamp_min(0.0).sqrt().to(torch.float32))
            indices.append(torch.gather(torch.cat(index, 1), 1, order))
    return Neighbours(
        distances=torch.cat(distances).cpu().numpy(),
        indices=torch.cat(indices).cpu().numpy().astype(np.int64),
    )


def _levels(images: torch.Tensor) -> bool:
    """Every value a multiple of 1/255 in [0, 1]: uint8 pixels made float."""
    scaled = images.to(torch.float32) * 255.0
    return bool(
        images.min() >= 0 and images.max() <= 1 and (scaled - scaled.round()).abs().max() < 1e-3
    )


def _int8(images: torch.Tensor) -> torch.Tensor:
    return ((images.to(torch.float32) * 255.0).round() - 128.0).to(torch.int8)


def _float32(images: torch.Tensor) -> torch.Tensor:
    return images if images.dtype == torch.float64 else images.to(torch.float32)


def _squared_norms(rows: torch.Tensor) -> torch.Tensor:
    if rows.dtype == torch.int8:
        wide = rows.to(torch.int32)
        return (wide * wide).sum(dim=1, dtype=torch.int32)
    return (rows * rows).sum(dim=1)


def _product(queries: torch.Tensor, pool: torch.Tensor) -> torch.Tensor:
    """queries @ pool.T; int8 × int8 summed in int32, exact."""
    if queries.dtype == torch.int8:
        return torch._int_mm(queries, pool.T)
    return queries @ pool.T


def _translate(images: torch.Tensor, dy: int, dx: int, black: float = 0) -> torch.Tensor:
    """(n, c, h, w) moved ``dy`` px down and ``dx`` px right; what enters is ``black``."""
    if dy == 0 and dx == 0:
        return images
    h, w = images.shape[-2:]
    out = torch.full_like(images, black)
    out[..., max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = images[
        ..., max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


def paired(
    queries: torch.Tensor,
    pool: torch.Tensor,
    index: np.ndarray,
    *,
    shift: int = 1,
    block: int = DEFAULT_SHIFT_BLOCK,
) -> np.ndarray:
    """float32 (n, j): the distance of ``queries[i]`` to ``pool[index[i, j]]``, for a few
    pool rows per query instead of all of them.

    Images (n, c, h, w) get the distance of :func:`nearest_shifted` with the same ``shift``,
    rows (n, d) the ℓ2 of :func:`nearest`. Sums are taken in float64; on uint8-valued images
    they are exact, so the result equals :func:`nearest_shifted`'s to the last bit.
    """
    images = queries.ndim == 4
    exact = images and _levels(queries) and _levels(pool)
    scale = 255.0 if exact else 1.0
    moves = [(dy, dx) for dy in range(-shift, shift + 1) for dx in range(-shift, shift + 1)]
    out = []
    with torch.inference_mode():
        for start in range(0, len(queries), block):
            rows = queries[start : start + block].to(torch.float64) * scale
            chosen = torch.from_numpy(index[start : start + block]).to(pool.device)
            candidates = pool[chosen].to(torch.float64) * scale  # (b, j, ...)
            if exact:
                rows, candidates = rows.round(), candidates.round()
            candidates = candidates.reshape(len(rows), chosen.shape[1], -1)
            candidates_sq = (candidates * candidates).sum(dim=2)
            moved = [_translate(rows, dy, dx) for dy, dx in moves] if images else [rows]
            q = torch.stack([m.reshape(len(rows), -1) for m in moved], dim=2)  # (b, d, shifts)
            squared = (q * q).sum(dim=1)[:, None, :] - 2.0 * (candidates @ q)
            best = (squared + candidates_sq[..., None]).amin(dim=2)
            distances = (best.clamp_min(0.0) / scale**2).sqrt().to(torch.float32)
            out.append(distances.cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, index.shape[1]), dtype=np.float32)
