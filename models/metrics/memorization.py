"""Memorization audit: which generated images are copies of training images, and how many.

Every generated image is scored against the training split by its nearest training images
(ℓ2; in pixels, the ℓ2 that forgives a ±1 px translation, see
:func:`models.metrics.neighbours.nearest_shifted`). d1, d2 are its distances to the nearest
and second-nearest training image.

- Nearest-neighbour ratio (Gu et al. 2023, "On Memorization in Diffusion Models",
  sail-sg/DiffMemorize ``mem_ratio.py``): a copy when d1 / d2 < 1/3.
- Calibrated ℓ2 (Carlini et al. 2023, "Extracting Training Data from Diffusion Models",
  §5.1): d1 / (α · mean distance to the n nearest training images), α = 0.5, n = 50; a
  copy below 1. It asks the same question as the ratio with the 50 nearest as the scale,
  so a training image with a near-twin in the training split does not hide its copies.
- DCR share (distance to closest record; SDMetrics ``DCROverfittingProtection``, MOSTLY AI
  QA reports): the share of generated images closer to the training split than to an
  equal-size held-out real split; 50 % when the generator knows the training images no
  better than the held-out ones.
- Authenticity (Alaa et al. ICML 2022, "How Faithful is your Synthetic Data?", §3.3):
  generated image j is not authentic when it is closer to its nearest training image i*
  than i* is to its own nearest other training image. Computed from this definition (the
  reference code and synthcity index ``real_to_real[real_to_synth_args]`` wrongly).

Each share comes with its 95 % bootstrap interval and beside its real-vs-real floor: the
held-out real images audited against the training split the same way, which is what a
generator that never saw the training images would score at these sample sizes.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from models.errors import Stopped
from models.metrics.intervals import Interval, bootstrap, share
from models.metrics.memorization_figures import (
    HEADLINE,
    AuditFigure,
    ImageScores,
    MemorizationAudit,
    MemorizationConfig,
    criterion,
)
from models.metrics.neighbours import Neighbours, nearest, nearest_shifted, paired

BOUNDING_NEIGHBOURS = 10
"""Authenticity: how many of an image's next-nearest training images bound its nearest's
own nearest-neighbour distance from above. On MNIST test images against mnist_t10k's
training split, 10 settle 57 % of the images without a search (49: 64 %, at 10× the cost
of the bound; each search left is a whole pass over the training split)."""


def audit(
    generated: torch.Tensor,
    train: torch.Tensor,
    holdout: torch.Tensor,
    *,
    space: str,
    seed: int,
    config: MemorizationConfig = MemorizationConfig(),  # noqa: B008 - frozen, shared safely
    should_stop: Callable[[], bool] = lambda: False,
) -> MemorizationAudit:
    """Audit ``generated`` against ``train``, with ``holdout`` (real images the generator
    never saw, same distribution) as the floor.

    Tensors are float, one row per image: (n, d) features, or (n, c, h, w) pixels in [0, 1]
    (uint8 / 255), which get the ℓ2 that forgives a translation of ``config.shift`` px.
    ``space`` names where the distances are taken ("pixels (28×28)", "features: mnist_t10k
    classifier") for the report. Raises :class:`models.errors.Stopped` when ``should_stop``
    turns true between blocks of work.

    1. Each generated and each held-out image: its ``neighbours`` nearest training images
       (d1, d2, their mean distance, the nearest index).
    2. Authenticity: each training image found nearest in 1 against its nearest other
       training image, searched for only when 10 training images near the generated one
       do not already settle it.
    3. DCR: a seeded subsample of the training split of the held-out split's size; each
       generated image is closer to it or to the held-out split. The floor splits the
       held-out images in two halves: the first half against the second and against a
       training subsample of the second half's size.
    4. Every share with its bootstrap interval (``seed`` for generated images, ``seed + 1``
       for the floor).
    """
    if generated.shape[1:] != train.shape[1:] or holdout.shape[1:] != train.shape[1:]:
        raise ValueError(
            f"generated {tuple(generated.shape)}, train {tuple(train.shape)} and holdout "
            f"{tuple(holdout.shape)} must share the shape of one image"
        )
    if len(train) < 2 or len(holdout) < 2 or len(generated) < 1:
        raise ValueError("the audit needs 2 training, 2 held-out and 1 generated image at least")
    images = generated.ndim == 4
    if not images and generated.ndim != 2:
        raise ValueError(f"(n, d) features or (n, c, h, w) images, got {tuple(generated.shape)}")

    shifts = {"shift": config.shift} if images else {}

    def knn(queries: torch.Tensor, pool: torch.Tensor, k: int) -> Neighbours:
        if images:
            return nearest_shifted(queries, pool, k, shift=config.shift, should_stop=should_stop)
        return nearest(queries, pool, k, should_stop=should_stop)

    # 1. The nearest training images of every generated and held-out image.
    k = max(2, min(config.neighbours, len(train)))
    near_gen, near_hold = knn(generated, train, k), knn(holdout, train, k)
    # 2. Authenticity: j is not authentic when d1 < r(i*), r(i*) the distance of its nearest
    # training image i* to i*'s nearest other training image. r(i*) ≤ D(i*, l) for any other
    # training image l, and the other training images near j are likely near i*: their
    # distances to i* settle every j with d1 at or above the least of them as authentic.
    # The i* of the others are searched (k = 2, the first that is not i* itself, so an
    # exact twin in the training split counts).
    bounds = [
        paired(
            train[torch.from_numpy(n.indices[:, 0])],
            train,
            n.indices[:, 1 : 1 + BOUNDING_NEIGHBOURS],
            **shifts,
        ).min(axis=1)
        for n in (near_gen, near_hold)
    ]
    open_ = [n.distances[:, 0] < b for n, b in zip((near_gen, near_hold), bounds, strict=True)]
    found = np.unique(
        np.concatenate([n.indices[o, 0] for n, o in zip((near_gen, near_hold), open_, strict=True)])
    )
    nearest_other = np.full(len(train), np.nan, dtype=np.float32)
    if len(found):
        own = knn(train[torch.from_numpy(found)], train, 2)
        not_self = own.indices[:, 0] != found
        nearest_other[found] = np.where(not_self, own.distances[:, 0], own.distances[:, 1])

    def authentic(near: Neighbours, searched: np.ndarray) -> np.ndarray:
        out = np.ones(len(near.indices), dtype=bool)
        out[searched] = near.distances[searched, 0] >= nearest_other[near.indices[searched, 0]]
        return out

    # 3. DCR: training subsamples of the held-out side's size, seeded. The nearest member
    # of a subsample is read off the k nearest training images found in 1 when one of them
    # is a member, and searched for only when none is.
    def nearest_member(near: Neighbours, queries: torch.Tensor, members: np.ndarray) -> np.ndarray:
        member = np.isin(near.indices, members)
        out = near.distances[np.arange(len(member)), member.argmax(axis=1)].copy()
        missing = np.flatnonzero(~member.any(axis=1))
        if len(missing):
            rest = knn(queries[torch.from_numpy(missing)], train[torch.from_numpy(members)], 1)
            out[missing] = rest.distances[:, 0]
        return out

    rng = np.random.default_rng(seed)
    size = min(len(holdout), len(train))
    sub = rng.permutation(len(train))[:size]
    held = torch.from_numpy(rng.permutation(len(holdout))[:size])
    dcr_gen = _closer(nearest_member(near_gen, generated, sub), knn(generated, holdout[held], 1))
    halves = rng.permutation(len(holdout))
    first, second = halves[: len(halves) // 2], halves[len(halves) // 2 :][:size]
    first_near = Neighbours(near_hold.distances[first], near_hold.indices[first])
    queries = holdout[torch.from_numpy(first)]
    dcr_hold = _closer(
        nearest_member(first_near, queries, sub[: len(second)]),
        knn(queries, holdout[torch.from_numpy(second)], 1),
    )
    if should_stop():
        raise Stopped()

    def scores(near: Neighbours, closer: np.ndarray, searched: np.ndarray) -> ImageScores:
        return ImageScores(
            d1=near.distances[:, 0],
            d2=near.distances[:, 1],
            scale=near.distances.mean(axis=1),
            nearest=near.indices[:, 0],
            authentic=authentic(near, searched),
            closer_to_train=closer,
            alpha=config.alpha,
            ratio_below=config.ratio_below,
            calibrated_below=config.calibrated_below,
        )

    gen, hold = scores(near_gen, dcr_gen, open_[0]), scores(near_hold, dcr_hold, open_[1])
    distance = f"ℓ2, minimum over translations of ±{config.shift} px" if images else "ℓ2"
    counts = {"generated": len(generated), "train": len(train), "holdout": len(holdout)}

    # 4. Intervals: the generated side and its floor, each on its own seed.
    def figure(
        key: str, label: str, of: Callable[[ImageScores], np.ndarray], better: str, detail: str
    ) -> AuditFigure:
        return AuditFigure(
            key=key,
            label=label,
            value=_interval(of(gen), seed=seed, resamples=config.resamples),
            floor=_interval(of(hold), seed=seed + 1, resamples=config.resamples),
            better=better,
            detail=detail,
        )

    neighbours = f"{k} nearest training images"
    copy_detail = {
        "ratio": (
            f"Share with d1/d2 < {config.ratio_below:.3g}: the nearest training image is "
            f"at least {1 / config.ratio_below:.3g}× closer than the second (Gu et al. "
            "2023). A training image with a near-twin in the training split hides its "
            "copies from this ratio."
        ),
        "calibrated": (
            f"Share with d1 < {config.alpha:g} × the mean distance to the {neighbours} "
            "(Carlini et al. 2023): much closer to one training image than to the others "
            "around it."
        ),
    }
    limits = (
        f" Measured with {distance} in {space}: near-copies that move, crop or recolour "
        "a training image beyond that are not caught, and a low share does not prove "
        "that the model cannot reproduce a training image."
    )
    figures = {
        "copy_fraction": figure(
            "copy_fraction",
            f"Copies of training images ({HEADLINE} criterion)",
            lambda s: s.copies(HEADLINE),
            better="lower",
            detail=f"The headline: {criterion(HEADLINE, config)}. {copy_detail[HEADLINE]}{limits}",
        ),
        "ratio_copies": figure(
            "ratio_copies",
            "Copies by nearest-neighbour ratio",
            lambda s: s.copies("ratio"),
            better="lower",
            detail=copy_detail["ratio"] + limits,
        ),
        "calibrated_copies": figure(
            "calibrated_copies",
            "Copies by calibrated ℓ2",
            lambda s: s.copies("calibrated"),
            better="lower",
            detail=copy_detail["calibrated"] + limits,
        ),
        "dcr_share": figure(
            "dcr_share",
            "Closer to training than to held-out images (DCR share)",
            lambda s: s.closer_to_train,
            better="near 0.5",
            detail=(
                f"Share of generated images whose nearest image in a seeded subsample of "
                f"{size:,} training images is closer than their nearest in {size:,} held-out "
                "real images (ties count half); 0.5 when the generator knows the training "
                f"images no better than unseen ones. Floor: {len(first):,} held-out images "
                f"against the other {len(second):,} and {len(second):,} training images. "
                "Above 0.5 says the samples lean towards the training images, not which "
                "ones are copied; 0.5 does not rule out a few copies: a copy counts only when "
                f"its training image fell in the subsample ({size:,} of {len(train):,})."
            ),
        ),
        "authenticity": figure(
            "authenticity",
            "Authentic (Alaa et al.)",
            lambda s: s.authentic,
            better="higher",
            detail=(
                "Share of images at least as far from their nearest training image as that "
                "image is from its own nearest other training image (Alaa et al. 2022). "
                "Real held-out images are far from 100 % authentic too, so read it against "
                "its floor; it mixes copying with underfitting (Stein et al. 2023) and is "
                "not a copy count."
            ),
        ),
    }
    return MemorizationAudit(
        space=space,
        distance=distance,
        counts=counts,
        headline=HEADLINE,
        figures=figures,
        generated=gen,
        holdout=hold,
        config=config,
    )


def _closer(to_train: np.ndarray, to_holdout: Neighbours) -> np.ndarray:
    a, b = to_train, to_holdout.distances[:, 0]
    return np.where(a < b, 1.0, np.where(a == b, 0.5, 0.0))


def _interval(values: np.ndarray, *, seed: int, resamples: int) -> Interval:
    if values.dtype == bool:
        return share(values, seed=seed, resamples=resamples)
    return bootstrap(
        lambda rows: float(values[rows].mean()), len(values), seed=seed, resamples=resamples
    )
