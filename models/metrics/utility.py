"""Classifier utility of synthetic data: does it train classifiers that work on real data?

Settings, each scored on the real test split over several seeds (mean ± std):

- TRTR: train on the real train split (the ceiling).
- TSTR: train on synthetic images only; the Classification Accuracy Score of Ravuri &
  Vinyals 2019, "Classification Accuracy Score for Conditional Generative Models".
- real k/class, with and without the synthetic images added, for small k: what augmenting
  a small real set buys.

What real data each model saw is part of the result (:attr:`UtilityResult.data_seen`):
the test split is refused if the generator was trained on it, and a gain from augmenting
k/class is qualified when the generator itself saw more real images than k/class.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from models.datasets import ImageDataset
from models.metrics import classifier as classifiers
from models.metrics.classifier import ClassifierConfig
from models.metrics.errors import MetricsError

DEFAULT_SUBSET_SIZES = (5, 20, 100)


@dataclass(frozen=True)
class DataDescription:
    """Which real images a model was trained on: ``count`` images of ``dataset:split``."""

    dataset: str
    split: str
    count: int
    note: str = ""
    """How the images were chosen when not the whole split, e.g. "20 per class, seed 0"."""

    def __str__(self) -> str:
        chosen = f" ({self.note})" if self.note else ""
        return f"{self.count} images of {self.dataset}:{self.split}{chosen}"


@dataclass(frozen=True)
class UtilityConfig:
    subset_sizes: tuple[int, ...] = DEFAULT_SUBSET_SIZES
    """Real images per class in the small-real-data settings."""
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)


@dataclass(frozen=True)
class UtilityRow:
    setting: str
    """"TRTR", "TSTR", "real 5/class" or "real 5/class + synthetic"."""
    real_images: int
    synthetic_images: int
    accuracies: list[float]
    """One per seed, in the order of :attr:`UtilityResult.seeds`."""

    @property
    def mean(self) -> float:
        return float(np.mean(self.accuracies))

    @property
    def std(self) -> float:
        return float(np.std(self.accuracies))


@dataclass(frozen=True)
class AugmentationGain:
    """Accuracy of real k/class + synthetic minus real k/class alone, paired by seed."""

    per_class: int
    gains: list[float]

    @property
    def mean(self) -> float:
        return float(np.mean(self.gains))

    @property
    def std(self) -> float:
        return float(np.std(self.gains))


@dataclass(frozen=True)
class UtilityResult:
    test: DataDescription
    generator_data: DataDescription
    classifier: str
    seeds: list[int]
    rows: list[UtilityRow]
    gains: list[AugmentationGain]
    data_seen: list[str]
    """Sentences stating what real data the generator and each classifier saw."""


def per_class_subset(labels: torch.Tensor, per_class: int, seed: int) -> torch.Tensor:
    """Sorted indices of up to ``per_class`` items of each label in ``labels`` (n,)."""
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for label in torch.unique(labels):
        members = torch.nonzero(labels == label).flatten()
        chosen.append(members[torch.randperm(members.numel(), generator=generator)[:per_class]])
    return torch.sort(torch.cat(chosen)).values


def check_no_leak(generator_data: DataDescription, train: ImageDataset, test: ImageDataset) -> None:
    """Refuse a test split that the generator or the classifiers were trained on."""
    if train.name != test.name or train.split == test.split:
        raise MetricsError(
            f"classifiers train on {train.name}:{train.split} and are scored on "
            f"{test.name}:{test.split}; these must be two different splits of one dataset"
        )
    if (generator_data.dataset, generator_data.split) == (test.name, test.split):
        raise MetricsError(
            f"the generator was trained on {test.name}:{test.split}, the split classifier "
            "utility is scored on; evaluate a generator trained on the train split"
        )


def classifier_utility(
    *,
    train: ImageDataset,
    test: ImageDataset,
    synthetic: ImageDataset,
    generator_data: DataDescription,
    config: UtilityConfig,
    seeds: Sequence[int],
    progress: Callable[[int, int], None] = lambda done, total: None,
    should_stop: Callable[[], bool] = lambda: False,
    device: torch.device | str = "cpu",
) -> UtilityResult:
    """Train the classifiers of every setting for every seed; score each on ``test``.

    train, test: the real splits (uint8 (n, c, h, w) at the synthetic images' size);
    synthetic: class-conditional samples with their conditioning labels.
    """
    check_no_leak(generator_data, train, test)
    if len(seeds) < 3:
        raise MetricsError(
            f"classifier utility needs at least 3 seeds for a spread, got {list(seeds)}"
        )
    if synthetic.labels.min() < 0:
        raise MetricsError("classifier utility needs class-conditional samples (labels >= 0)")
    if tuple(synthetic.images.shape[1:]) != tuple(train.images.shape[1:]):
        raise MetricsError(
            f"synthetic images {tuple(synthetic.images.shape[1:])} and real images "
            f"{tuple(train.images.shape[1:])} differ in shape"
        )
    total = len(seeds) * (2 + 2 * len(config.subset_sizes))
    done = 0

    def score(images: torch.Tensor, labels: torch.Tensor, seed: int) -> float:
        nonlocal done
        model = classifiers.train_classifier(
            lambda: classifiers.build(config.classifier, images.shape[1], train.num_classes),
            images,
            labels,
            config.classifier,
            seed,
            should_stop,
            device,
        )
        done += 1
        progress(done, total)
        return classifiers.accuracy(model, test.images, test.labels)

    n_syn = len(synthetic)
    rows = [
        UtilityRow("TRTR", len(train), 0, [score(train.images, train.labels, s) for s in seeds]),
        UtilityRow("TSTR", 0, n_syn, [score(synthetic.images, synthetic.labels, s) for s in seeds]),
    ]
    gains = []
    for k in config.subset_sizes:
        real_only, augmented, n_real = [], [], 0
        for s in seeds:
            idx = per_class_subset(train.labels, k, seed=s)
            n_real = idx.numel()
            images, labels = train.images[idx], train.labels[idx]
            real_only.append(score(images, labels, s))
            augmented.append(
                score(
                    torch.cat([images, synthetic.images]),
                    torch.cat([labels, synthetic.labels]),
                    s,
                )
            )
        rows.append(UtilityRow(f"real {k}/class", n_real, 0, real_only))
        rows.append(UtilityRow(f"real {k}/class + synthetic", n_real, n_syn, augmented))
        gains.append(
            AugmentationGain(k, [a - r for a, r in zip(augmented, real_only, strict=True)])
        )
    test_data = DataDescription(test.name, test.split, len(test))
    return UtilityResult(
        test=test_data,
        generator_data=generator_data,
        classifier=_describe(config.classifier),
        seeds=list(seeds),
        rows=rows,
        gains=gains,
        data_seen=data_seen(
            train=train, test=test_data, generator_data=generator_data, rows=rows, n_synthetic=n_syn
        ),
    )


def data_seen(
    *,
    train: ImageDataset,
    test: DataDescription,
    generator_data: DataDescription,
    rows: Sequence[UtilityRow],
    n_synthetic: int,
) -> list[str]:
    """The leakage statement: one sentence for the test split, the generator, each setting."""
    lines = [
        f"Every accuracy is measured on {test}, which neither the generator nor any "
        "classifier was trained on.",
        f"The generator was trained on {generator_data}; the {n_synthetic} synthetic images "
        "come from it.",
    ]
    for row in rows:
        real = f"{row.real_images} real images of {train.name}:{train.split}"
        if row.setting == "TRTR":
            lines.append(f"TRTR classifiers saw {real} (the whole split).")
        elif row.setting == "TSTR":
            lines.append(
                f"TSTR classifiers saw no real image directly, only the {row.synthetic_images} "
                f"synthetic images (and through the generator, {generator_data})."
            )
        elif row.synthetic_images == 0:
            lines.append(f"'{row.setting}' classifiers saw {real}, a fresh draw per seed.")
        else:
            lines.append(
                f"'{row.setting}' classifiers saw the same {real} plus the "
                f"{row.synthetic_images} synthetic images."
            )
    smallest = min((r.real_images for r in rows if r.setting.startswith("real")), default=None)
    if smallest is not None and generator_data.count > smallest:
        lines.append(
            f"The generator saw {generator_data.count} real images, more than a small-subset "
            "classifier: a gain from augmentation here includes what the generator learnt "
            "from those extra real images. It shows the value of synthetic data for a small "
            "real set only when the generator was trained on that same subset (as in "
            "bench/utility.py)."
        )
    return lines


def _describe(config: ClassifierConfig) -> str:
    if config.arch == "small_cnn":
        net = f"small CNN (width {config.width})"
    else:
        pretrained = (
            f"from {config.resnet18_weights.name}" if config.resnet18_weights else "from scratch"
        )
        net = f"resnet18 ({pretrained})"
    return (
        f"{net}, AdamW lr {config.lr}, {config.epochs} epochs (at least {config.min_steps} steps)"
    )
