"""``evaluate``: synthetic images + a reference dataset -> an :class:`EvaluationReport`.

The worker's evaluate job calls this once. In order:

1. load the reference dataset's train and test splits at the synthetic image size;
2. get the reference classifier (cached per dataset and image shape, trained on train);
3. one streaming pass over the synthetic batches through every feature extractor needed
   (the reference classifier always: it judges classes; Inception-v3 when the distances are
   asked in its features or the Inception Score is asked), keeping running statistics, a
   seeded sample of ``keep`` items, coverage counts and IS sums;
4. the same pass over the reference split and over the other real split (the floor);
5. the requested metrics, each beside its real-vs-real floor, in the one feature space
   the caller chose (``features``: "inception" or "classifier");
6. classifier utility, figures, and the report.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from models import datasets
from models.datasets import ImageDataset
from models.engine_options import metrics as names
from models.metrics import plots, privacy
from models.metrics.classifier import ClassifierConfig
from models.metrics.collect import BatchHook, FeatureSet, collect, dataset_pass
from models.metrics.coverage import UNCONDITIONED, ClassCoverage
from models.metrics.errors import MetricsError
from models.metrics.features import (
    FeatureExtractor,
    InceptionFeatures,
    dataset_classifier,
    describe,
    metric_label,
    require_inception_weights,
)
from models.metrics.inception_score import DEFAULT_SPLITS, InceptionScore
from models.metrics.inception_score import UNIT as IS_UNIT
from models.metrics.kid import DEFAULT_SUBSET_SIZE, DEFAULT_SUBSETS
from models.metrics.pairwise import pairwise
from models.metrics.precision_recall import DEFAULT_K
from models.metrics.privacy import PrivacyInputs
from models.metrics.report import EvaluationReport, Figures, GeneratorInfo, MetricValue, jsonable
from models.metrics.utility import UtilityConfig, classifier_utility

# Declared once, torch-free (core validates requests with them).
METRICS, FEATURE_SPACES, DISTANCES = names.METRICS, names.FEATURE_SPACES, names.DISTANCES
PRIVACY = frozenset(names.PRIVACY)

REFERENCE_CLASSIFIER_SEED = 0
"""Fixed, so the "<dataset> classifier" feature space is the same across evaluations."""

Progress = Callable[[str, int, int], None]
Loader = Callable[..., ImageDataset]


@dataclass(frozen=True)
class EvaluationConfig:
    batch_size: int = 250
    """Images per batch through the feature extractors (reference splits)."""
    keep: int = 10_000
    """Items per set kept for KID, precision/recall, t-SNE and the utility classifiers."""
    kid_subsets: int = DEFAULT_SUBSETS
    kid_subset_size: int = DEFAULT_SUBSET_SIZE
    pr_k: int = DEFAULT_K
    is_splits: int = DEFAULT_SPLITS
    grid_per_class: int = 10
    tsne_points: int = 500
    """Points per set (real, synthetic) in the t-SNE figure."""
    reference_classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    utility: UtilityConfig = field(default_factory=UtilityConfig)


@dataclass(frozen=True)
class SyntheticSource:
    """The images under evaluation, consumed once.

    batches: (uint8 (b, c, h, w), int64 (b,)) pairs; a label is the class the sample was
        conditioned on, or -1 (:data:`~models.metrics.coverage.UNCONDITIONED`).
    count: the total number of images the batches hold.
    """

    batches: Iterable[tuple[torch.Tensor, torch.Tensor]]
    count: int


def evaluate(
    *,
    synthetic: SyntheticSource,
    reference: str,
    metrics: Sequence[str],
    generator: GeneratorInfo,
    cache_dir: Path,
    seeds: Sequence[int] = (0, 1, 2),
    features: str = "inception",
    inception_weights: Path | None = None,
    config: EvaluationConfig | None = None,
    code_version: str = "unknown",
    device: torch.device | str = "cpu",
    progress: Progress = lambda stage, done, total: None,
    should_stop: Callable[[], bool] = lambda: False,
    load_dataset: Loader = datasets.load,
    privacy_inputs: PrivacyInputs | None = None,
    privacy_note: str = "",
    features_note: str = "",
) -> EvaluationReport:
    """Evaluate ``synthetic`` against ``reference`` ("name:split"; a bare name means test).

    metrics: a subset of :data:`METRICS`. seeds: the first draws KID subsets and the kept
    samples; classifier utility uses all of them (at least 3). cache_dir: where the
    reference classifier is cached. features: one of :data:`FEATURE_SPACES`, where FD, KID
    and precision/recall are computed. inception_weights: pytorch-fid's FID Inception
    weights, needed (else MetricsError) for those distances in "inception" features and
    for the Inception Score.
    progress(stage, done, total) is called as work proceeds; should_stop() is polled per
    batch and per classifier step, and raises :class:`~models.engines.base.Stopped`.
    load_dataset(name, split, image_size=...) defaults to :func:`models.datasets.load`.
    privacy_inputs: the model's training set and a held-out split (and its white-box
    attack), needed by "memorization" and "membership_inference"; privacy_note: why the
    audit was not asked, said in the report when it was not. features_note: how the
    feature space was chosen (a service's "auto"), said beside it in the report.
    """
    config = config or EvaluationConfig()
    wanted = _check_request(metrics, seeds, synthetic.count, features)
    if wanted & PRIVACY and privacy_inputs is None:
        raise MetricsError(
            f"{', '.join(sorted(wanted & PRIVACY))} need the model's training set and a "
            "held-out split of its dataset"
        )
    inception_users = _inception_users(wanted, features)
    require_inception_weights(inception_weights, inception_users, features)
    name, _, split = reference.partition(":")
    split = split or "test"
    if split not in ("train", "test"):
        raise MetricsError(f"reference split must be 'train' or 'test', got {split!r}")

    batches = iter(synthetic.batches)
    first = next(batches, None)
    if first is None:
        raise MetricsError("the synthetic source yielded no images")
    images0 = first[0]
    if images0.dtype != torch.uint8 or images0.ndim != 4 or images0.shape[2] != images0.shape[3]:
        raise MetricsError(
            f"synthetic batches must be square uint8 (b, c, h, w), got {images0.dtype} "
            f"{tuple(images0.shape)}"
        )
    size = int(images0.shape[-1])
    real = {s: load_dataset(name, s, image_size=size) for s in ("train", "test")}
    floor_split = "train" if split == "test" else "test"

    progress("reference classifier", 0, 1)
    ref_classifier = dataset_classifier(
        real["train"],
        real["test"],
        cache_dir,
        config.reference_classifier,
        REFERENCE_CLASSIFIER_SEED,
        device,
        should_stop,
    )
    progress("reference classifier", 1, 1)

    extractors: list[FeatureExtractor] = [ref_classifier]
    inception = None
    if inception_users and inception_weights is not None:
        inception = InceptionFeatures(inception_weights, device=device)
        extractors.append(inception)
    space: FeatureExtractor = inception if features == "inception" and inception else ref_classifier

    # Synthetic pass, with the per-batch accumulators only the synthetic set needs.
    num_classes = real["train"].num_classes
    coverage = ClassCoverage(num_classes)
    grid: dict[int, list[torch.Tensor]] = {}
    syn_is = (
        InceptionScore(synthetic.count, inception.num_logits, config.is_splits, seeds[0])
        if inception is not None and "inception_score" in wanted
        else None
    )

    def on_synthetic(
        images: torch.Tensor, labels: torch.Tensor, out: dict[str, tuple[np.ndarray, np.ndarray]]
    ) -> None:
        predicted = out[ref_classifier.tag][1].argmax(axis=1)
        conditioned = labels.cpu().numpy()
        coverage.update(conditioned, predicted)
        if syn_is is not None and inception is not None:
            syn_is.update(out[inception.tag][1])
        rows = np.where(conditioned == UNCONDITIONED, predicted, conditioned)
        for image, row in zip(images.cpu(), rows.tolist(), strict=True):
            if len(grid.setdefault(row, [])) < config.grid_per_class:
                grid[row].append(image)

    syn = collect(
        itertools.chain([first], batches),
        extractors,
        keep=config.keep,
        seed=seeds[0],
        keep_images=bool(wanted & ({"classifier_utility"} | PRIVACY)),
        on_batch=on_synthetic,
        progress=lambda done: progress("synthetic features", done, synthetic.count),
        should_stop=should_stop,
    )
    if syn.count != synthetic.count:
        raise MetricsError(
            f"the synthetic source promised {synthetic.count} images and gave {syn.count}"
        )

    def real_pass(data: ImageDataset, stage: str, on_batch: BatchHook | None = None) -> FeatureSet:
        return dataset_pass(
            data,
            extractors,
            keep=config.keep,
            batch_size=config.batch_size,
            seed=seeds[0],
            on_batch=on_batch,
            progress=lambda done: progress(f"{stage} features", done, len(data)),
            should_stop=should_stop,
        )

    ref = real_pass(real[split], "reference")
    # The Inception Score's floor is the score of real images: those of the other split.
    other_is = (
        InceptionScore(len(real[floor_split]), inception.num_logits, config.is_splits, seeds[0])
        if syn_is is not None and inception is not None
        else None
    )
    other = real_pass(
        real[floor_split],
        "floor",
        on_batch=(
            (lambda _images, _labels, out: other_is.update(out[inception.tag][1]))
            if inception is not None and other_is is not None
            else None
        ),
    )

    progress("metrics", 0, 1)
    values = pairwise(
        space,
        syn,
        ref,
        other,
        wanted,
        kid_subsets=config.kid_subsets,
        kid_subset_size=config.kid_subset_size,
        pr_k=config.pr_k,
        seed=seeds[0],
        should_stop=should_stop,
    )
    if inception is not None and syn_is is not None and other_is is not None:
        s, o = syn_is.compute(), other_is.compute()
        values.append(
            MetricValue(
                key="inception_score",
                label=metric_label("IS", inception),
                features=inception.name,
                value=s.mean,
                std=s.std,
                floor=o.mean,
                floor_std=o.std,
                better="higher",
                unit=IS_UNIT,
                detail=f"{s.splits} splits; floor: IS of {name}:{floor_split}",
            )
        )
    progress("metrics", 1, 1)

    privacy_report = None
    if wanted & PRIVACY:
        assert privacy_inputs is not None and syn.images is not None
        privacy_values, privacy_report = privacy.audit_against_splits(
            wanted & PRIVACY,
            syn,
            space,
            privacy_inputs,
            size=size,
            batch_size=config.batch_size,
            seed=seeds[0],
            load_dataset=load_dataset,
            progress=progress,
            should_stop=should_stop,
        )
        values += privacy_values

    utility = None
    if "classifier_utility" in wanted:
        if syn.images is None:
            raise MetricsError("no synthetic images were kept for classifier utility")
        utility = classifier_utility(
            train=real["train"],
            test=real["test"],
            synthetic=ImageDataset(
                name="synthetic",
                split=generator.name,
                images=syn.images,
                labels=torch.from_numpy(syn.labels),
                num_classes=num_classes,
                class_names=real["train"].class_names,
            ),
            generator_data=generator.training_data,
            config=config.utility,
            seeds=seeds,
            progress=lambda done, total: progress("classifier utility", done, total),
            should_stop=should_stop,
            device=device,
        )

    progress("figures", 0, 1)
    figures = Figures(
        sample_grid_png=plots.sample_grid(
            {k: torch.stack(v) for k, v in grid.items()}, real["train"].class_names
        ),
        tsne_png=plots.tsne_figure(
            ref.features[ref_classifier.tag],
            syn.features[ref_classifier.tag],
            config.tsne_points,
            seeds[0],
        ),
        tsne_features=ref_classifier.name,
        training_curves_svg=plots.curves_svg(list(generator.training_curve)),
    )
    progress("figures", 1, 1)

    return EvaluationReport(
        reference=f"{name}:{split}",
        floor_pair=(
            f"{name}:{floor_split} ({other.count} images) and {name}:{split} ({ref.count} images)"
        ),
        synthetic_count=syn.count,
        reference_count=ref.count,
        kept_per_set=config.keep,
        seeds=list(seeds),
        metrics=values,
        feature_space=features,
        features_note=features_note,
        features=[describe(e) for e in extractors],
        reference_classifier={
            "name": ref_classifier.name,
            "trained_on": f"{len(real['train'])} images of {name}:train",
            "test_accuracy": ref_classifier.test_accuracy,
            "seed": REFERENCE_CLASSIFIER_SEED,
        },
        generator=generator,
        code_version=code_version,
        config=jsonable(asdict(config)),
        coverage=coverage.compute(real["train"].class_names)
        if "class_coverage" in wanted
        else None,
        utility=utility,
        figures=figures,
        privacy=privacy_report,
        privacy_note="" if privacy_report else privacy_note,
    )


def _check_request(
    metrics: Sequence[str], seeds: Sequence[int], count: int, features: str
) -> set[str]:
    unknown = sorted(set(metrics) - set(METRICS))
    if unknown or not metrics:
        raise MetricsError(f"unknown or no metrics {unknown}; choose from {list(METRICS)}")
    if features not in FEATURE_SPACES:
        raise MetricsError(f"features must be one of {list(FEATURE_SPACES)}, got {features!r}")
    if not seeds:
        raise MetricsError("evaluate needs at least one seed")
    if "classifier_utility" in metrics and len(seeds) < 3:
        raise MetricsError(f"classifier_utility needs at least 3 seeds, got {list(seeds)}")
    if count < 2:
        raise MetricsError(f"evaluate needs at least 2 synthetic images, got {count}")
    return set(metrics)


def _inception_users(wanted: set[str], features: str) -> list[str]:
    """The wanted metrics computed in Inception-v3 features."""
    users = sorted(wanted & (DISTANCES | PRIVACY)) if features == "inception" else []
    return users + sorted(wanted & {"inception_score"})
