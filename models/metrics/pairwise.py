"""Synthetic vs reference in one feature space: FD, KID, precision and recall, each beside
the same metric between two real splits (the floor: what a perfect generator would score
at these sample sizes). Every value says its unit, so no number is left unexplained."""

from __future__ import annotations

from collections.abc import Callable

from models.engines.base import Stopped
from models.metrics.collect import FeatureSet
from models.metrics.features import FeatureExtractor, metric_label
from models.metrics.frechet import frechet_distance
from models.metrics.kid import kernel_inception_distance
from models.metrics.precision_recall import precision_recall
from models.metrics.report import MetricValue

FD_UNIT = "squared distance between feature Gaussians (raw)"
KID_UNIT = "MMD², raw (papers often print KID × 10³)"
FRACTION_UNIT = "fraction of images, 0 to 1"


def pairwise(
    extractor: FeatureExtractor,
    syn: FeatureSet,
    ref: FeatureSet,
    other: FeatureSet,
    wanted: set[str],
    *,
    kid_subsets: int,
    kid_subset_size: int,
    pr_k: int,
    seed: int,
    should_stop: Callable[[], bool],
) -> list[MetricValue]:
    """FD ("fid"), KID ("kid"), precision and recall ("precision_recall") as ``wanted``,
    of synthetic vs reference and of the floor pair, in ``extractor``'s features."""
    tag, out = extractor.tag, []
    if "fid" in wanted:
        s, r, o = syn.stats[tag], ref.stats[tag], other.stats[tag]
        out.append(
            MetricValue(
                key="fd",
                label=metric_label("FD", extractor),
                features=extractor.name,
                value=frechet_distance(s.mean, s.cov, r.mean, r.cov),
                floor=frechet_distance(o.mean, o.cov, r.mean, r.cov),
                unit=FD_UNIT,
                detail=(
                    f"all images: {syn.count} synthetic, {ref.count} reference, {other.count} floor"
                ),
            )
        )
    if should_stop():
        raise Stopped()
    if "kid" in wanted:
        syn_f, ref_f, other_f = syn.features[tag], ref.features[tag], other.features[tag]
        kid = kernel_inception_distance(
            ref_f, syn_f, subsets=kid_subsets, subset_size=kid_subset_size, seed=seed
        )
        floor = kernel_inception_distance(
            ref_f, other_f, subsets=kid_subsets, subset_size=kid_subset_size, seed=seed
        )
        out.append(
            MetricValue(
                key="kid",
                label=metric_label("KID", extractor),
                features=extractor.name,
                value=kid.mean,
                std=kid.std,
                floor=floor.mean,
                floor_std=floor.std,
                unit=KID_UNIT,
                detail=f"{kid.subsets} subsets of {kid.subset_size} (floor: {floor.subset_size})",
            )
        )
    if should_stop():
        raise Stopped()
    if "precision_recall" in wanted:
        pr = precision_recall(ref.features[tag], syn.features[tag], pr_k)
        floor_pr = precision_recall(ref.features[tag], other.features[tag], pr_k)
        detail = (
            f"k={pr.k} nearest neighbours; {syn.features[tag].shape[0]} synthetic vs "
            f"{ref.features[tag].shape[0]} reference"
        )
        for key, value, floor_value in (
            ("precision", pr.precision, floor_pr.precision),
            ("recall", pr.recall, floor_pr.recall),
        ):
            out.append(
                MetricValue(
                    key=key,
                    label=metric_label(key.capitalize(), extractor),
                    features=extractor.name,
                    value=value,
                    floor=floor_value,
                    better="higher",
                    unit=FRACTION_UNIT,
                    detail=detail,
                )
            )
    return out
