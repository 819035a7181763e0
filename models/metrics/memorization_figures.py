"""What a memorization audit returns (:func:`models.metrics.memorization.audit`): its
config, per-image scores, the set-level figures beside their floors, the summary that
names the headline criterion, and the gallery of the most copy-like images."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from models.metrics.intervals import RESAMPLES, Interval

HEADLINE = "ratio"
"""The criterion behind ``copy_fraction``: Gu et al.'s nearest-neighbour ratio d1/d2 < 1/3.
On copies planted into unseen MNIST test images (bench/privacy_audit.py, pixels, the ±1 px
tolerant ℓ2) both criteria catch every exact, noisy and shifted copy, but the calibrated
ℓ2 (its α = 0.5 chosen on CIFAR-10, whose images lie far apart) also flags 0.25 % of the
real unseen images, where the ratio flags none: digits such as 1s sit in dense clusters,
much nearer their nearest training image than the mean of their 50 nearest. The ratio's
blind spot: a copy of a training image with a near-twin in the training split (d2 ≈ d1);
an exact copy (d1 = 0) always counts."""

FRACTION_UNIT = "fraction of images, 0 to 1"


@dataclass(frozen=True)
class MemorizationConfig:
    ratio_below: float = 1 / 3
    """Gu et al.: a copy when d1 / d2 is below this."""
    alpha: float = 0.5
    """Carlini et al.'s α: the calibrated ℓ2 is d1 / (α · mean distance to the neighbours)."""
    neighbours: int = 50
    """Carlini et al.'s n: how many nearest training images set the scale (fewer when the
    training split is smaller)."""
    calibrated_below: float = 1.0
    """Carlini et al.: a copy when the calibrated ℓ2 is below this."""
    shift: int = 1
    """Pixels a generated image may be moved to meet a training image (images given as
    (n, c, h, w) only; 0 for the plain ℓ2)."""
    resamples: int = RESAMPLES
    """Bootstrap resamples behind every interval."""


@dataclass(frozen=True)
class ImageScores:
    """Per audited image (arrays of shape (n,)), against the training split."""

    d1: np.ndarray
    """float32: distance to the nearest training image."""
    d2: np.ndarray
    """float32: distance to the second-nearest training image."""
    scale: np.ndarray
    """float32: mean distance to the ``neighbours`` nearest training images (d1 among them)."""
    nearest: np.ndarray
    """int64: index of the nearest training image."""
    authentic: np.ndarray
    """bool: not closer to its nearest training image than that image is to its own
    nearest other training image (Alaa et al.)."""
    closer_to_train: np.ndarray
    """float64 over the images in the DCR comparison: 1 when closer to the training
    subsample than to the held-out split, 0 when farther, 0.5 on a tie."""
    alpha: float
    ratio_below: float
    calibrated_below: float

    @property
    def ratio(self) -> np.ndarray:
        """d1 / d2; 0 for an exact copy (d1 = 0) even when d2 = 0."""
        return np.where(self.d1 == 0, 0.0, self.d1 / np.where(self.d2 == 0, 1.0, self.d2))

    @property
    def calibrated(self) -> np.ndarray:
        """d1 / (α · scale); 0 for an exact copy."""
        return np.where(self.d1 == 0, 0.0, self.d1 / (self.alpha * np.maximum(self.scale, 1e-12)))

    def copies(self, criterion: str) -> np.ndarray:
        """bool (n,): a copy under ``criterion`` ("ratio" or "calibrated")."""
        if criterion == "ratio":
            return self.ratio < self.ratio_below
        if criterion == "calibrated":
            return self.calibrated < self.calibrated_below
        raise ValueError(f"unknown criterion {criterion!r}")


@dataclass(frozen=True)
class AuditFigure:
    key: str
    label: str
    value: Interval
    """Generated images against the training split."""
    floor: Interval
    """Held-out real images against the training split, the same way."""
    better: str
    """"lower", "higher" or "near 0.5"."""
    detail: str
    """What it measured and what it does not prove."""
    unit: str = FRACTION_UNIT

    def to_dict(self) -> dict:
        return {
            "key": self.key,
            "label": self.label,
            "value": self.value.to_dict(),
            "floor": self.floor.to_dict(),
            "better": self.better,
            "unit": self.unit,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class GalleryItem:
    generated: int
    """Index into the generated images."""
    train: int
    """Index of its nearest training image."""
    d1: float
    d2: float
    ratio: float
    calibrated: float
    copy: bool
    """A copy under the headline criterion."""

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class MemorizationAudit:
    space: str
    """Where distances were taken, e.g. "pixels (28×28)"."""
    distance: str
    """Which distance, e.g. "ℓ2, minimum over translations of ±1 px"."""
    counts: dict[str, int]
    """"generated", "train", "holdout": the images audited."""
    headline: str
    """The criterion behind ``copy_fraction``: "calibrated" or "ratio"."""
    figures: dict[str, AuditFigure]
    """copy_fraction, ratio_copies, calibrated_copies, dcr_share, authenticity."""
    generated: ImageScores = field(repr=False)
    holdout: ImageScores = field(repr=False)
    """The held-out real images scored as if generated: the floor of every figure."""
    config: MemorizationConfig = field(default_factory=MemorizationConfig)

    @property
    def summary(self) -> str:
        """What the audit found, in words, with its headline criterion named and why."""
        f = self.figures
        other = "calibrated" if self.headline == "ratio" else "ratio"
        headline, second = criterion(self.headline, self.config), criterion(other, self.config)
        return (
            f"{pct(f['copy_fraction'].value)} of {self.counts['generated']:,} generated "
            f"images are copies of one of {self.counts['train']:,} training images; "
            f"{self.counts['holdout']:,} held-out real images: "
            f"{pct(f['copy_fraction'].floor)}. Headline criterion: {headline}"
            f", {WHY[self.headline]} By {second}: "
            f"{pct(f[other + '_copies'].value)} (real: {pct(f[other + '_copies'].floor)}). "
            f"DCR share {pct(f['dcr_share'].value)} (50 % ideal; real: "
            f"{pct(f['dcr_share'].floor)}); authentic {pct(f['authenticity'].value)} "
            f"(real: {pct(f['authenticity'].floor)}). Distances: {self.distance} in "
            f"{self.space}. A copy fraction at its floor does not prove that the model cannot "
            "reproduce a training image: these samples, at this distance, show no more "
            "copies than unseen real images do."
        )

    def to_dict(self) -> dict:
        return {
            "space": self.space,
            "distance": self.distance,
            "counts": dict(self.counts),
            "headline": self.headline,
            "config": asdict(self.config),
            "figures": {key: f.to_dict() for key, f in self.figures.items()},
            "gallery": [item.to_dict() for item in gallery(self)],
            "summary": self.summary,
        }


WHY = {
    "ratio": (
        "chosen because on copies planted among unseen MNIST images it caught every one "
        "and flagged no real image, where the calibrated ℓ2 flagged 0.25 % of them."
    ),
    "calibrated": "chosen because a training image's near-twin does not hide its copies.",
}


def criterion(name: str, config: MemorizationConfig) -> str:
    if name == "ratio":
        return f"Gu et al.'s nearest-neighbour ratio (d1/d2 < {config.ratio_below:.3g})"
    return (
        f"Carlini et al.'s calibrated ℓ2 (d1 / (α · mean distance to the {config.neighbours} "
        f"nearest training images) < {config.calibrated_below:g}, α = {config.alpha:g})"
    )


def gallery(audit: MemorizationAudit, count: int = 16) -> list[GalleryItem]:
    """The ``count`` most copy-like generated images under the headline criterion, most
    copy-like first, each with its nearest training image, for a side-by-side gallery."""
    s = audit.generated
    statistic = s.calibrated if audit.headline == "calibrated" else s.ratio
    order = np.lexsort((s.d1, statistic))[:count]  # ties (exact copies at 0) by d1
    copies = s.copies(audit.headline)
    ratio, calibrated = s.ratio, s.calibrated
    return [
        GalleryItem(
            generated=int(j),
            train=int(s.nearest[j]),
            d1=float(s.d1[j]),
            d2=float(s.d2[j]),
            ratio=float(ratio[j]),
            calibrated=float(calibrated[j]),
            copy=bool(copies[j]),
        )
        for j in order
    ]


def pct(interval: Interval) -> str:
    return f"{interval.value:.1%} [{interval.low:.1%}, {interval.high:.1%}]"
