"""The privacy audit of an evaluate job: does the synthetic set give its training images away?

Two metrics, each computed beside a real-vs-real floor (held-out real images of the same
dataset put through the same test):

- ``memorization`` (:mod:`models.metrics.memorization`): how close each synthetic image is
  to its nearest training image, in pixels at the model's size and in the evaluate's feature
  space; the copy fraction, the DCR share and authenticity, each with a 95 % interval; and
  the most copy-like images beside their nearest training image, for a person to judge.
- ``membership_inference`` (:mod:`models.metrics.membership`): how well an attacker tells
  training images from held-out ones, black-box (distance to the synthetic set) and, where
  the engine has one, white-box (the model's own loss, logit or energy): AUC and TPR at 1 %
  FPR with bootstrap intervals. For a model trained with differential privacy, the measured
  TPR is compared with what its (ε, δ) allows (TPR ≤ e^ε·FPR + δ).

An audit is evidence, not a guarantee: a low copy fraction says these images, in these
distances, are not near-copies; only differential privacy bounds what any attack can learn.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from models.datasets import ImageDataset
from models.engines.runtime.holdout import slice_indices
from models.metrics import membership, memorization, memorization_figures, plots
from models.metrics.collect import FeatureSet, dataset_pass
from models.metrics.errors import MetricsError
from models.metrics.features import FeatureExtractor
from models.metrics.privacy_report import FEATURES, PIXELS, PrivacyReport
from models.metrics.report import MetricValue

WhiteBox = Callable[[torch.Tensor, torch.Tensor], np.ndarray | None]
"""(uint8 images (n, c, h, w), int64 labels (n,)) → a member score per image (higher: more
likely a training image), or None when the engine has no white-box attack."""

GALLERY = 16


@dataclass(frozen=True)
class PrivacyInputs:
    """What the caller knows of the model under audit.

    train: the training set as "name:split"; holdout: a split of the same dataset the model
    never saw. white_box: the engine's own membership score (None: black-box only).
    differential_privacy: the model's DP record (epsilon, delta, ...) when it was trained
    with DP, for the consistency check; None when it was not. sliced: the lineage's
    ``selection.held_out`` when keep-best held a seeded slice of the training split out
    of the optimiser ({"source": "slice", "count", "of", "seed", ...}): those images were
    never trained on and are not counted as members.
    """

    train: str
    holdout: str
    white_box: WhiteBox | None = None
    white_box_name: str = ""
    differential_privacy: Mapping[str, Any] | None = None
    sliced: Mapping[str, Any] | None = None


def audit(
    *,
    wanted: set[str],
    synthetic_images: torch.Tensor,
    synthetic_features: np.ndarray,
    train_images: torch.Tensor,
    train_labels: torch.Tensor,
    train_features: np.ndarray,
    holdout_images: torch.Tensor,
    holdout_labels: torch.Tensor,
    holdout_features: np.ndarray,
    space: str,
    inputs: PrivacyInputs,
    seed: int,
    progress: Callable[[str, int, int], None] = lambda stage, done, total: None,
    should_stop: Callable[[], bool] = lambda: False,
) -> tuple[list[MetricValue], PrivacyReport]:
    """The privacy metrics in ``wanted`` for one synthetic set.

    Images are uint8 (n, c, h, w) at the model's size; features float32 (n, d) in the
    evaluate's feature space (named ``space``), row for row with the images.
    """
    report = PrivacyReport(
        train=inputs.train,
        holdout=inputs.holdout,
        counts={
            "synthetic": len(synthetic_images),
            "train": len(train_images),
            "held_out": len(holdout_images),
        },
    )
    values: list[MetricValue] = []
    side = synthetic_images.shape[-1]
    # Pixels stay images (n, c, h, w) in [0, 1]: the audit's pixel distance forgives a
    # 1-px translation; features are rows (n, d).
    views = {
        PIXELS: (
            f"pixels ({side}×{side})",
            (_unit(synthetic_images), _unit(train_images), _unit(holdout_images)),
        ),
        FEATURES: (
            f"features: {space}",
            (
                torch.from_numpy(synthetic_features),
                torch.from_numpy(train_features),
                torch.from_numpy(holdout_features),
            ),
        ),
    }
    if "memorization" in wanted:
        progress("memorization", 0, len(views))
        audits = {}
        for done, (key, (name, (syn, train, holdout))) in enumerate(views.items(), start=1):
            audits[key] = memorization.audit(
                syn, train, holdout, space=name, seed=seed, should_stop=should_stop
            )
            progress("memorization", done, len(views))
        report.memorization = {key: a.to_dict() for key, a in audits.items()}
        for a in audits.values():
            # The headline criterion's own row would repeat copy_fraction.
            values += [
                _figure_value(figure, a.space)
                for key, figure in a.figures.items()
                if key != f"{a.headline}_copies"
            ]
        items = memorization_figures.gallery(audits[PIXELS], count=GALLERY)
        report.gallery = [item.to_dict() for item in items]
        report.gallery_pngs = [
            plots.pair_png(synthetic_images[item.generated], train_images[item.train])
            for item in items
        ]
    attacks: list[membership.AttackResult] = []
    if "membership_inference" in wanted:
        attacks = _membership(
            views,
            train_images,
            train_labels,
            holdout_images,
            holdout_labels,
            inputs,
            seed,
            progress,
            should_stop,
        )
        report.membership = [a.to_dict() for a in attacks]
        values += [_attack_value(a) for a in attacks]
    if inputs.differential_privacy is not None:
        report.differential_privacy = _dp_check(inputs.differential_privacy, attacks)
    else:
        report.notes.append(
            "The model was not trained with differential privacy: no bound applies to what "
            "an attack can learn from it."
        )
    return values, report


def _unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 (n, c, h, w) → float32 in [0, 1]."""
    return images.to(torch.float32) / 255.0


def _figure_value(figure: memorization_figures.AuditFigure, space: str) -> MetricValue:
    return MetricValue(
        key=figure.key,
        label=f"{figure.label} ({space})",
        features=space,
        value=figure.value.value,
        interval=(figure.value.low, figure.value.high),
        floor=figure.floor.value,
        floor_interval=(figure.floor.low, figure.floor.high),
        better=figure.better,
        unit=figure.unit,
        detail=figure.detail,
    )


def _membership(
    views: dict[str, tuple[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]],
    train_images: torch.Tensor,
    train_labels: torch.Tensor,
    holdout_images: torch.Tensor,
    holdout_labels: torch.Tensor,
    inputs: PrivacyInputs,
    seed: int,
    progress: Callable[[str, int, int], None],
    should_stop: Callable[[], bool],
) -> list[membership.AttackResult]:
    chosen = membership.choose_members(len(train_images), len(holdout_images), seed=seed)
    members, nonmembers = chosen.members, chosen.nonmembers
    dp = inputs.differential_privacy
    bound = {"epsilon": float(dp["epsilon"]), "delta": float(dp["delta"])} if dp else {}
    detail = (
        f"{chosen.count} training images (members) against {chosen.count} held-out images "
        "(non-members)"
        + ("" if chosen.enough else f"; fewer than {membership.AT_LEAST} of each were available")
    )
    attacks = []
    steps = len(views) + (1 if inputs.white_box is not None else 0)
    progress("membership inference", 0, steps)
    for done, (name, (syn, train, holdout)) in enumerate(views.values(), start=1):
        attacks.append(
            membership.attack(
                membership.distance_scores(train[members], syn, should_stop=should_stop),
                membership.distance_scores(holdout[nonmembers], syn, should_stop=should_stop),
                name=f"black-box: distance to the synthetic set ({name})",
                seed=seed,
                detail=detail,
                **bound,
            )
        )
        progress("membership inference", done, steps)
    if inputs.white_box is not None:
        member_scores = inputs.white_box(train_images[members], train_labels[members])
        nonmember_scores = inputs.white_box(holdout_images[nonmembers], holdout_labels[nonmembers])
        if member_scores is not None and nonmember_scores is not None:
            attacks.append(
                membership.attack(
                    member_scores,
                    nonmember_scores,
                    name=f"white-box: {inputs.white_box_name}",
                    seed=seed,
                    detail=detail,
                    **bound,
                )
            )
        progress("membership inference", steps, steps)
    return attacks


def _attack_value(a: membership.AttackResult) -> MetricValue:
    return MetricValue(
        key="membership_auc",
        label=f"membership inference AUC, {a.name}",
        features=a.name,
        value=a.auc.value,
        interval=(a.auc.low, a.auc.high),
        floor=0.5,
        better="0.5 (chance)",
        unit=(
            f"ROC AUC; TPR at {a.fpr:.0%} FPR {a.tpr.value:.3f} [{a.tpr.low:.3f}, {a.tpr.high:.3f}]"
        ),
        detail=a.detail,
    )


def _dp_check(dp: Mapping[str, Any], attacks: list[membership.AttackResult]) -> dict[str, Any]:
    """Every attack's TPR at 1 % FPR against the bound (ε, δ)-DP puts on any attack."""
    bound = membership.dp_bound_tpr(
        float(dp["epsilon"]), float(dp["delta"]), fpr=membership.LOW_FPR
    )
    return {
        **dict(dp),
        "tpr_bound_at_1pct_fpr": bound,
        "bound_says_something": bound < 1.0,
        "attacks": [{"attack": a.name, **(a.dp.to_dict() if a.dp else {})} for a in attacks],
        # A measured TPR whose whole interval lies above the bound means a bug.
        "violated": any(a.dp is not None and a.dp.violated for a in attacks),
    }


def audit_against_splits(
    wanted: set[str],
    syn: FeatureSet,
    space: FeatureExtractor,
    inputs: PrivacyInputs,
    *,
    size: int,
    batch_size: int,
    seed: int,
    load_dataset: Callable[..., ImageDataset],
    progress: Callable[[str, int, int], None] = lambda stage, done, total: None,
    should_stop: Callable[[], bool] = lambda: False,
) -> tuple[list[MetricValue], PrivacyReport]:
    """:func:`audit` of an evaluate's kept synthetic sample (``syn``: its images and its
    features in ``space``) against the whole training split and the held-out split, loaded
    with ``load_dataset(name, split, image_size=size)`` and put through ``space``."""
    splits = {}
    notes = []
    for role, ref in (("train", inputs.train), ("held-out", inputs.holdout)):
        name, _, split = ref.partition(":")
        data = load_dataset(name, split, image_size=size)
        if role == "train" and inputs.sliced:
            data, note = _without_slice(data, inputs.sliced, ref)
            notes.append(note)
        assert syn.images is not None, "keep the synthetic images for the privacy audit"
        if data.images.shape[1:] != syn.images.shape[1:]:
            raise MetricsError(
                f"the {role} set {ref} has images of shape {tuple(data.images.shape[1:])}, "
                f"the synthetic ones {tuple(syn.images.shape[1:])}: not the same data"
            )
        features = dataset_pass(
            data,
            [space],
            keep=len(data),  # every image: a copy of any one of them counts
            batch_size=batch_size,
            seed=seed,
            progress=lambda done, r=role, n=len(data): progress(f"{r} features", done, n),
            should_stop=should_stop,
        )
        # A reservoir as large as the stream keeps item i in slot i: row i is image i.
        splits[role] = (data, features.features[space.tag])
    (train, train_features), (holdout, holdout_features) = splits["train"], splits["held-out"]
    values, report = audit(
        wanted=wanted,
        synthetic_images=syn.images,
        synthetic_features=syn.features[space.tag],
        train_images=train.images,
        train_labels=train.labels,
        train_features=train_features,
        holdout_images=holdout.images,
        holdout_labels=holdout.labels,
        holdout_features=holdout_features,
        space=space.name,
        inputs=inputs,
        seed=seed,
        progress=progress,
        should_stop=should_stop,
    )
    report.notes += notes
    return values, report


def _without_slice(
    data: ImageDataset, sliced: Mapping[str, Any], ref: str
) -> tuple[ImageDataset, str]:
    """The training split less the slice keep-best held out of the optimiser, and what
    the report says of it. The slice is drawn again from its seed over the whole split
    (models/engines/runtime/holdout.py), so the split must still hold what it held then."""
    if int(sliced["of"]) != len(data):
        raise MetricsError(
            f"the model's lineage says keep-best held {sliced['count']} of {sliced['of']} "
            f"training images out of training, but {ref} now has {len(data)}: the images "
            "it never trained on cannot be told apart, so members cannot be chosen"
        )
    held, kept = slice_indices(len(data), int(sliced["seed"]))
    if len(held) != int(sliced["count"]):
        raise MetricsError(
            f"the model's lineage says keep-best held out {sliced['count']} training images; "
            f"drawn again from its seed the slice has {len(held)}: not the same rule"
        )
    note = (
        f"{len(held)} of the {len(data)} images in {ref} were held out of training by "
        "keep-best (scored against, never trained on): the audit leaves them out of the "
        f"training set, whose {len(kept)} other images are the members."
    )
    return (
        dataclasses.replace(data, images=data.images[kept], labels=data.labels[kept]),
        note,
    )
