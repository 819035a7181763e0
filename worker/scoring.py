"""A train job's held-out scoring (keep-best, models/engines/runtime/selection.py): the
dataset classifier evaluate's "classifier" feature space uses, the held-out images, and
the events each evaluation writes."""

from __future__ import annotations

from typing import Any

from core import catalog
from models.datasets import ImageDataset
from models.engines.base import Scoring
from models.metrics.evaluate import REFERENCE_CLASSIFIER_SEED
from models.metrics.features import dataset_classifier
from models.metrics.heldout import HeldOutScore, sample_count
from worker import metrics_cache
from worker.context import JobContext
from worker.datasets import load as dataset_loader


def scoring(ctx: JobContext, name: str, split: str, image_size: int | None) -> Scoring:
    """What ``engine.train`` scores with: the dataset's other split when it is not
    evaluate's default reference (:func:`core.catalog.scoring_split`), else a seeded slice
    of the training data; in the dataset classifier's features, trained on the dataset's
    train split (cached in storage, shared with evaluate jobs)."""
    other = catalog.scoring_split(name, split)
    held_out = dataset_loader.load(ctx, name, other, image_size) if other else None

    def make_scorer(held: ImageDataset) -> HeldOutScore:
        size = int(held.images.shape[-1])
        real = {s: dataset_loader.load(ctx, name, s, size) for s in ("train", "test")}
        cache_dir = ctx.settings.work_dir / "metrics-cache"
        metrics_cache.sync_down(ctx.storage, cache_dir)
        classifier = dataset_classifier(
            real["train"],
            real["test"],
            cache_dir,
            seed=REFERENCE_CLASSIFIER_SEED,
            should_stop=ctx.should_stop,
        )
        metrics_cache.sync_up(ctx.storage, cache_dir)
        return HeldOutScore(classifier, held, sample_count(size))

    return Scoring(
        make_scorer=make_scorer,
        held_out=held_out,
        held_out_ref=f"{name}:{other}" if other else f"{name}:{split}",
    )


def evaluated(ctx: JobContext) -> Any:
    """Each evaluation as an ``output`` event: its step, scores and the best so far."""

    def record(step: int, scores: dict[str, Any]) -> None:
        ctx.output(evaluation=scores)

    return record


def summary(selection: dict[str, Any] | None) -> dict[str, Any] | None:
    """The selection report without its per-evaluation list (those are curve rows)."""
    if selection is None:
        return None
    out = {k: v for k, v in selection.items() if k != "evaluations"}
    if "evaluations" in selection:
        out["evaluations"] = len(selection["evaluations"])
    return out
