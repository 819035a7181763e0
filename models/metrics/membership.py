"""Membership inference: how well a score tells the training images from held-out ones.

References:
    Shokri et al. 2017, "Membership Inference Attacks against Machine Learning Models" —
        members (training rows) against non-members of the same distribution.
    Carlini et al. 2022, "Membership Inference Attacks From First Principles" (LiRA), §3 —
        report the ROC's true-positive rate at a low false-positive rate, not only the AUC:
        an attack that finds a few members with certainty is what leaks.
    Chen et al. 2020, "GAN-Leaks: A Taxonomy of Membership Inference Attacks against
        Generative Models", the full black-box attack — the score from the generated
        images alone: how close a candidate lies to its nearest generated image.
    Kairouz, Oh & Viswanath 2015, "The Composition Theorem for Differential Privacy",
        Theorem 2.1 — an (ε, δ)-DP mechanism bounds every attack's ROC: TPR ≤ e^ε·FPR + δ.

Scores: float (n,), higher = "more likely a member"; members and non-members scored by
the same attack. The white-box scores (a ddpm's loss, a gan's discriminator, an ebm's
energy) come from each engine's ``membership_scores``; the black-box one is
:func:`distance_scores`. Every figure carries a stratified bootstrap interval
(:mod:`.intervals`): members and non-members resampled independently, as they were drawn.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import rankdata

from models.metrics import neighbours
from models.metrics.intervals import LEVEL, RESAMPLES, Interval

LOW_FPR = 0.01
"""The false-positive rate the TPR is read at. Carlini et al. 2022 read 0.1 % on tens of
thousands of candidates; a thousand non-members put 1 % at ten images, 0.1 % at one."""
AT_LEAST = 1000
"""Members and non-members each an audit should have (PRIVACY-ANCHORS.md)."""
AT_MOST = 2000
"""Each, at most: an AUC near 0.5 is known to about ±0.019 at 2,000 of each (±0.026 at
1,000), and the white-box attacks run the networks over every candidate several times."""


@dataclass(frozen=True)
class DPCheck:
    """The measured TPR at ``fpr`` against what (ε, δ)-DP allows: e^ε·fpr + δ.

    within: the whole interval of the measured TPR lies at or under the bound.
    violated: the whole interval lies above it — the model is not (ε, δ)-DP as trained
        (a bug in the accounting or the training), not bad luck of the sample.
    Neither: the interval straddles the bound; more candidates would tell.
    """

    epsilon: float
    delta: float
    fpr: float
    bound: float
    within: bool
    violated: bool

    def to_dict(self) -> dict[str, float | bool]:
        return {
            "epsilon": self.epsilon,
            "delta": self.delta,
            "fpr": self.fpr,
            "bound": self.bound,
            "within": self.within,
            "violated": self.violated,
        }


@dataclass(frozen=True)
class AttackResult:
    """One attack's ROC summary over ``members`` and ``nonmembers`` candidates.

    auc: area under the ROC, ties counted half (0.5 = chance, 1 = every member scores
        above every non-member).
    tpr: the share of members flagged at the threshold that flags at most ``fpr`` of
        the non-members (:func:`tpr_at_fpr`); chance is ``fpr``.
    fpr_achieved: the share of non-members that threshold flags (≤ ``fpr``; below it when
        ties or the count keep it from reaching ``fpr`` exactly).
    dp: the check against a known (ε, δ), or None when the model has none.
    """

    name: str
    detail: str
    members: int
    nonmembers: int
    auc: Interval
    tpr: Interval
    fpr: float
    fpr_achieved: float
    seed: int
    dp: DPCheck | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "detail": self.detail,
            "members": self.members,
            "nonmembers": self.nonmembers,
            "auc": self.auc.to_dict(),
            "tpr_at_fpr": self.tpr.to_dict(),
            "fpr": self.fpr,
            "fpr_achieved": self.fpr_achieved,
            "seed": self.seed,
            "dp": self.dp.to_dict() if self.dp is not None else None,
        }


def auc(members: np.ndarray, nonmembers: np.ndarray) -> float:
    """P(score of a member > score of a non-member) + ½·P(equal): the Mann–Whitney U over
    n_m·n_n, from average ranks of the pooled scores. members (n_m,), nonmembers (n_n,)."""
    m, n = len(members), len(nonmembers)
    ranks = rankdata(np.concatenate([members, nonmembers]))  # ties get their average rank
    u = ranks[:m].sum() - m * (m + 1) / 2.0
    return float(u / (m * n))


def threshold_at_fpr(nonmembers: np.ndarray, fpr: float = LOW_FPR) -> float:
    """τ such that ``score > τ`` flags at most ⌊fpr·n_n⌋ non-members, the fewest
    possible τ being the (⌊fpr·n_n⌋ + 1)-th largest non-member score.

    The ROC is a step function: of its points with FPR ≤ ``fpr`` this is the one with the
    highest TPR (the rule of Carlini et al.'s code). Non-members tied at τ are not flagged,
    nor are members tied with them, so ties never buy true positives at false ones' cost.
    """
    allowed = math.floor(fpr * len(nonmembers) + 1e-9)  # 1 % of 1,000 is 10, not 9
    if allowed >= len(nonmembers):
        return -math.inf
    return float(np.partition(nonmembers, len(nonmembers) - 1 - allowed)[-1 - allowed])


def tpr_at_fpr(members: np.ndarray, nonmembers: np.ndarray, fpr: float = LOW_FPR) -> float:
    """The share of members scoring above :func:`threshold_at_fpr` of the non-members."""
    return float((members > threshold_at_fpr(nonmembers, fpr)).mean())


def dp_bound_tpr(epsilon: float, delta: float, fpr: float = LOW_FPR) -> float:
    """min(1, e^ε·fpr + δ): the highest TPR any attack reaches at ``fpr`` on an (ε, δ)-DP
    model (Kairouz et al. 2015, Theorem 2.1). At 1 % FPR: 2.7 % + δ at ε = 1, 7.4 % + δ at
    ε = 2; from ε ≈ 4.6 it is 1 and says nothing."""
    if epsilon < 0 or not 0 <= delta <= 1:
        raise ValueError(f"(ε, δ) = ({epsilon}, {delta}): need ε ≥ 0 and δ in [0, 1]")
    return min(1.0, math.exp(epsilon) * fpr + delta)


def check_dp(tpr: Interval, *, epsilon: float, delta: float, fpr: float = LOW_FPR) -> DPCheck:
    """Where the measured ``tpr`` at ``fpr`` lies against :func:`dp_bound_tpr`."""
    bound = dp_bound_tpr(epsilon, delta, fpr)
    return DPCheck(
        epsilon=epsilon,
        delta=delta,
        fpr=fpr,
        bound=bound,
        within=tpr.high <= bound,
        violated=tpr.low > bound,
    )


def attack(
    member_scores: np.ndarray,
    nonmember_scores: np.ndarray,
    *,
    name: str,
    seed: int,
    detail: str = "",
    fpr: float = LOW_FPR,
    epsilon: float | None = None,
    delta: float = 0.0,
    resamples: int = RESAMPLES,
) -> AttackResult:
    """The AUC and the TPR at ``fpr`` of one attack's scores, each with its bootstrap
    interval, and the check against (``epsilon``, ``delta``) when the model has an ε.

    member_scores (n_m,), nonmember_scores (n_n,): finite, higher = "more likely a member".
    name, detail: what the attack is, for the report ("distance", "ddpm loss ...").
    seed: the bootstrap's; the same scores and seed give the same intervals.
    """
    members = _scores(member_scores, "member_scores")
    nonmembers = _scores(nonmember_scores, "nonmember_scores")
    auc_interval, tpr_interval = stratified_bootstrap(
        lambda m, n: (auc(m, n), tpr_at_fpr(m, n, fpr)),
        members,
        nonmembers,
        seed=seed,
        resamples=resamples,
    )
    flagged = float((nonmembers > threshold_at_fpr(nonmembers, fpr)).mean())
    return AttackResult(
        name=name,
        detail=detail,
        members=len(members),
        nonmembers=len(nonmembers),
        auc=auc_interval,
        tpr=tpr_interval,
        fpr=fpr,
        fpr_achieved=flagged,
        seed=seed,
        dp=None if epsilon is None else check_dp(tpr_interval, epsilon=epsilon, delta=delta,
                                                 fpr=fpr),
    )  # fmt: skip


def stratified_bootstrap(
    statistics: Callable[[np.ndarray, np.ndarray], tuple[float, ...]],
    members: np.ndarray,
    nonmembers: np.ndarray,
    *,
    seed: int,
    resamples: int = RESAMPLES,
) -> tuple[Interval, ...]:
    """``statistics(members, nonmembers)`` on the scores given, and the percentile
    interval of each over ``resamples`` draws that resample the members and the
    non-members with replacement, each group on its own (Efron & Tibshirani 1993, §6.9,
    two-sample problems): the counts stay those of the audit.

    :func:`.intervals.bootstrap` with two strata: the same :data:`.intervals.LEVEL`,
    percentile rule and clamping of the interval around the value.
    """
    rng = np.random.default_rng(seed)
    m, n = len(members), len(nonmembers)
    values = statistics(members, nonmembers)
    draws = np.array(
        [
            statistics(members[rng.integers(0, m, m)], nonmembers[rng.integers(0, n, n)])
            for _ in range(resamples)
        ],
        dtype=float,
    ).reshape(resamples, len(values))
    alpha = (1.0 - LEVEL) / 2.0
    lows, highs = np.quantile(draws, [alpha, 1.0 - alpha], axis=0)
    return tuple(
        Interval(value=float(v), low=float(min(lo, v)), high=float(max(hi, v)))
        for v, lo, hi in zip(values, lows, highs, strict=True)
    )


def distance_scores(
    candidates: torch.Tensor,
    generated: torch.Tensor,
    *,
    should_stop: Callable[[], bool] = lambda: False,
) -> np.ndarray:
    """The black-box attack any engine allows: −ℓ2 distance of each candidate to its
    nearest generated image (Chen et al. 2020's full black-box attack, in ℓ2).

    candidates (n, ...), generated (m, ...): float rows of the same space — pixels at one
    scale, or features of one extractor. Returns float64 (n,), at most 0: a candidate the
    model reproduced exactly scores 0.

    The neighbour comes from :func:`.neighbours.nearest`; its distance is then taken again
    as ‖q − p‖ directly, because the expanded form ‖q‖² − 2q·p + ‖p‖² loses the small
    distances a copy has in float32 rounding (about 3·10⁻⁴·‖q‖ where the truth is 0).
    """
    found = neighbours.nearest(candidates, generated, 1, should_stop=should_stop)
    index = torch.from_numpy(found.indices[:, 0]).to(generated.device)
    queries = candidates.reshape(len(candidates), -1).to("cpu", torch.float64)
    nearest_rows = generated.reshape(len(generated), -1)[index].to("cpu", torch.float64)
    return -(queries - nearest_rows).norm(dim=1).numpy()


@dataclass(frozen=True)
class Candidates:
    """The rows an audit scores: ``members`` (indices into the training images) and as
    many ``nonmembers`` (indices into the held-out images), sorted, drawn with ``seed``.

    enough: there are at least :data:`AT_LEAST` of each (PRIVACY-ANCHORS.md); fewer give
    wider intervals, and the report should say so.
    """

    members: np.ndarray
    nonmembers: np.ndarray
    count: int
    enough: bool
    seed: int

    def to_dict(self) -> dict[str, object]:
        return {"count": self.count, "enough": self.enough, "seed": self.seed}


def choose_members(
    train_count: int,
    holdout_count: int,
    *,
    seed: int,
    at_least: int = AT_LEAST,
    at_most: int = AT_MOST,
) -> Candidates:
    """Equal numbers of training rows (members) and held-out rows (non-members), as many
    as the smaller split has up to ``at_most``, each drawn without replacement.

    Equal counts keep chance at AUC 0.5 and the TPR's and the FPR's resolution alike.
    The held-out rows must be ones the model never trained on (the split its lineage names
    as held out), of the same distribution as the training rows.
    """
    if at_least > at_most:
        raise ValueError(f"at_least {at_least} is above at_most {at_most}")
    count = min(train_count, holdout_count, at_most)
    if count < 1:
        raise ValueError(
            f"a membership audit needs training and held-out images; got {train_count} "
            f"and {holdout_count}"
        )
    rng = np.random.default_rng(seed)
    return Candidates(
        members=np.sort(rng.choice(train_count, count, replace=False)),
        nonmembers=np.sort(rng.choice(holdout_count, count, replace=False)),
        count=count,
        enough=count >= at_least,
        seed=seed,
    )


def _scores(scores: np.ndarray, what: str) -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(scores) == 0:
        raise ValueError(f"{what} is empty")
    if not np.isfinite(scores).all():
        raise ValueError(f"{what} holds {int((~np.isfinite(scores)).sum())} non-finite scores")
    return scores
