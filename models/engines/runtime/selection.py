"""Keep-best: score the sampling weights on held-out images while training, keep the best.

Every ``eval_every`` steps, and at the last step, the run draws the same small sample
(seed :data:`EVAL_SEED`, the classes in turn) from its sampling weights (the EMA where
there is one) and a :class:`~models.engines.base.Scorer` measures it against held-out
images: FD in the dataset classifier's features, and label agreement when the model is
conditional. The best evaluation's weights are kept (in memory and in every checkpoint),
so the model a job registers is the best one it saw, as Lightning's ``ModelCheckpoint``
keeps a validation loss's best; ``early_stop_patience`` evaluations without a better one
end the run.

Which evaluation is better (:func:`better`): an unconditional model's lower FD. A
conditional model's must first draw the classes it is asked for: among the evaluations
whose label agreement is within :data:`AGREEMENT_TOLERANCE` of the best agreement of the
run so far, the lower FD. The kept one's agreement therefore never falls more than the
tolerance below the run's best (a score's sampling error on a few hundred images is
about that), and among those FD decides.

Scoring leaves the run untouched: the global RNGs are restored after it, the sampler's
own generator is seeded, and the sampling weights are only read, so a scored run trains
exactly as an unscored one on the same data.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import torch

from models.engines.base import Scorer
from models.engines.runtime import rng

EVAL_SEED = 0
"""Every evaluation draws from this seed, so two evaluations differ only in the weights."""

AGREEMENT_TOLERANCE = 0.01
"""Label agreements this close count as equal and FD decides (see the module docstring)."""

Draw = Callable[[int, torch.Tensor | None, Mapping[str, Any]], torch.Tensor]
"""(n, labels, sample options) → uint8 (n, c, h, w) from the run's sampling weights now."""
Snapshot = Callable[[], dict[str, torch.nn.Module]]
"""The networks a trained model keeps (what ``save`` writes), as they are now."""


def better(candidate: Mapping[str, float], best: Mapping[str, float] | None, top: float) -> bool:
    """Whether ``candidate`` beats ``best`` (None: nothing yet); ``top`` is the best label
    agreement seen so far, the candidate's included (ignored without label agreement)."""
    if best is None:
        return True
    if "label_agreement" in candidate:
        floor = top - AGREEMENT_TOLERANCE
        if best["label_agreement"] < floor:
            return candidate["label_agreement"] >= floor
        if candidate["label_agreement"] < floor:
            return False
    return candidate["fd"] < best["fd"]


class Selection:
    """A run's evaluations, the best so far and its weights; part of every checkpoint.

    eval_every: steps between evaluations; keep: "best" or "last"; patience: evaluations
    without a better one that end the run (None: never); labels: int64 (count,) the
    classes each evaluation draws (None: unconditional).
    """

    def __init__(
        self,
        *,
        eval_every: int,
        keep: str,
        patience: int | None,
        scorer: Scorer,
        draw: Draw,
        snapshot: Snapshot,
        labels: torch.Tensor | None,
        evaluated: Callable[[int, dict[str, Any]], None] | None = None,
    ) -> None:
        self.eval_every = eval_every
        self.keep = keep
        self.patience = patience
        self.scorer = scorer
        self.draw = draw
        self.snapshot = snapshot
        self.labels = labels
        self.evaluated = evaluated
        self.evaluations: list[dict[str, float]] = []
        self.best: dict[str, float] | None = None
        self.best_weights: dict[str, dict[str, torch.Tensor]] | None = None
        self.top_agreement = float("-inf")
        self.since_best = 0
        self.seconds = 0.0
        self.stopped_early: int | None = None

    # ------------------------------------------------------------------ while training

    def due(self, step: int) -> bool:
        return step % self.eval_every == 0

    @property
    def patience_spent(self) -> bool:
        return self.patience is not None and self.since_best >= self.patience

    def score(self, opts: Mapping[str, Any] | None = None) -> dict[str, float]:
        """The current sampling weights' scores; the global RNGs are left as they were."""
        started = time.monotonic()
        state = rng.rng_state()
        try:
            images = self.draw(self.scorer.count, self.labels, opts or {})
            scores = self.scorer(images, self.labels)
        finally:
            rng.set_rng_state(state)
            self.seconds += time.monotonic() - started
        return scores

    def evaluate(self, step: int) -> dict[str, float]:
        """Score the weights at ``step``, keep them when they are the best so far, and
        return the curve row's terms (``eval_fd``, ``eval_label_agreement``, ``best_step``)."""
        scores = {"step": float(step), **self.score()}
        self.evaluations.append(scores)
        if "label_agreement" in scores:
            self.top_agreement = max(self.top_agreement, scores["label_agreement"])
        if better(scores, self.best, self.top_agreement):
            self.best = scores
            self.best_weights = {
                name: {k: v.detach().to("cpu", copy=True) for k, v in net.state_dict().items()}
                for name, net in self.snapshot().items()
            }
            self.since_best = 0
        else:
            self.since_best += 1
        if self.patience_spent:
            self.stopped_early = step
        assert self.best is not None
        terms = {f"eval_{k}": v for k, v in scores.items() if k != "step"}
        terms["best_step"] = self.best["step"]
        if self.evaluated is not None:
            self.evaluated(step, {**_figures(scores), "best": _figures(self.best)})
        return terms

    # ------------------------------------------------------------------ at the end

    def restore_best(self) -> None:
        """Load the best evaluation's weights into the run's networks (keep "best")."""
        if self.keep != "best" or self.best_weights is None:
            return
        for name, net in self.snapshot().items():
            net.load_state_dict(self.best_weights[name])

    def chosen(self) -> dict[str, float] | None:
        """The evaluation whose weights the model keeps."""
        if self.keep == "best":
            return self.best
        return self.evaluations[-1] if self.evaluations else None

    def tune(
        self,
        option: str,
        sample_option: str,
        values: tuple[float, ...],
        known: Mapping[float, Mapping[str, float]],
    ) -> dict[str, Any]:
        """Score the kept weights with each of ``values`` for ``sample_option`` and choose
        the best (:func:`better`) as the model's ``option`` (a sampling default);
        ``known``: scores these weights already have, by value."""
        rows: list[dict[str, float]] = []
        top = float("-inf")
        best: dict[str, float] | None = None
        for value in values:
            scores = known.get(float(value)) or self.score({sample_option: value})
            row = {"value": float(value), **{k: v for k, v in scores.items() if k != "step"}}
            rows.append(row)
            top = max(top, row.get("label_agreement", top))
        for row in rows:
            if better(row, best, top):
                best = row
        assert best is not None
        return {"option": option, "chosen": best["value"], "scores": rows}

    # ------------------------------------------------------------------ checkpoint

    def state_dict(self) -> dict[str, Any]:
        return {
            "evaluations": [dict(e) for e in self.evaluations],
            "best": dict(self.best) if self.best is not None else None,
            "best_weights": self.best_weights,
            "top_agreement": self.top_agreement,
            "since_best": self.since_best,
            "seconds": self.seconds,
            "stopped_early": self.stopped_early,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.evaluations = [dict(e) for e in state["evaluations"]]
        self.best = dict(state["best"]) if state["best"] is not None else None
        self.best_weights = state["best_weights"]
        self.top_agreement = float(state["top_agreement"])
        self.since_best = int(state["since_best"])
        self.seconds = float(state["seconds"])
        self.stopped_early = state["stopped_early"]

    # ------------------------------------------------------------------ report

    def report(self, last_step: int) -> dict[str, Any]:
        """What the train result, the model version and the lineage say of the choice."""
        last = self.evaluations[-1] if self.evaluations else None
        chosen = self.chosen()
        return {
            "eval_every": self.eval_every,
            "keep": self.keep,
            "early_stop_patience": self.patience,
            "features": self.scorer.features,
            "generated": self.scorer.count,
            "criterion": (
                f"lowest FD among evaluations within {AGREEMENT_TOLERANCE} label agreement "
                "of the run's best"
                if self.labels is not None
                else "lowest FD"
            ),
            "evaluations": [_figures(e) for e in self.evaluations],
            "chosen": _figures(chosen) if chosen is not None else None,
            "last": _figures(last) if last is not None else None,
            "last_step": last_step,
            "stopped_early": (
                {
                    "step": self.stopped_early,
                    "reason": f"{self.patience} evaluation{'s' if self.patience != 1 else ''} "
                    "without a better score",
                }
                if self.stopped_early is not None
                else None
            ),
            "scoring_seconds": round(self.seconds, 3),
        }


def _figures(scores: Mapping[str, float]) -> dict[str, Any]:
    return {k: int(v) if k == "step" else v for k, v in scores.items()}
