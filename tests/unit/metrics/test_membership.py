"""Specification of the membership-inference figures: AUC, TPR at 1 % FPR, their intervals,
the DP bound, the black-box distance score and the choice of candidates."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score, roc_curve

from models.metrics import membership


def test_perfectly_separated_scores_have_auc_1_with_a_tight_interval():
    rng = np.random.default_rng(0)
    result = membership.attack(
        rng.uniform(1, 2, 1000), rng.uniform(0, 1, 1000), name="separated", seed=0
    )
    assert (result.auc.value, result.auc.low, result.auc.high) == (1.0, 1.0, 1.0)
    assert result.tpr.value == 1.0 and result.tpr.low == 1.0


def test_identical_distributions_give_auc_near_one_half_with_an_interval_covering_it():
    rng = np.random.default_rng(1)
    result = membership.attack(rng.normal(size=1000), rng.normal(size=1000), name="null", seed=0)
    assert abs(result.auc.value - 0.5) < 0.03
    assert result.auc.low < 0.5 < result.auc.high
    assert result.tpr.low <= membership.LOW_FPR <= result.tpr.high


def test_auc_counts_ties_half():
    assert membership.auc(np.array([1.0, 1.0]), np.array([1.0, 1.0])) == 0.5
    # pairs (member, non-member): (2, 1) (2, 0) (1, 0) win, (1, 1) ties: 3.5 of 4
    assert membership.auc(np.array([2.0, 1.0]), np.array([1.0, 0.0])) == 0.875


def test_auc_is_sklearns_on_scores_with_ties():
    rng = np.random.default_rng(2)
    members, nonmembers = rng.integers(0, 5, 300), rng.integers(0, 4, 200)
    truth = np.r_[np.ones(300), np.zeros(200)]
    expected = roc_auc_score(truth, np.r_[members, nonmembers])
    assert membership.auc(members, nonmembers) == pytest.approx(expected, abs=1e-12)


def test_tpr_at_1_percent_fpr_on_a_constructed_case():
    # 100 non-members 0..99: 1 % is one false positive, so τ = 98 and only 99 is flagged.
    nonmembers = np.arange(100.0)
    # Above 98: 100, 99.5, 99 (tied with the flagged non-member), 98.5; 98 ties τ: not.
    members = np.array([100, 99.5, 99, 98.5, 98, 97, 50, 20, 10, 0], dtype=float)
    assert membership.threshold_at_fpr(nonmembers) == 98.0
    result = membership.attack(members, nonmembers, name="constructed", seed=0)
    assert result.tpr.value == 0.4
    assert result.fpr_achieved == 0.01


def test_tpr_at_fpr_is_the_best_roc_point_at_or_under_that_fpr():
    rng = np.random.default_rng(3)
    members, nonmembers = rng.integers(0, 60, 500) + 5.0, rng.integers(0, 60, 700).astype(float)
    fpr, tpr, _ = roc_curve(np.r_[np.ones(500), np.zeros(700)], np.r_[members, nonmembers])
    expected = tpr[fpr <= 0.01].max()
    assert membership.tpr_at_fpr(members, nonmembers, 0.01) == pytest.approx(expected)


def test_intervals_are_seeded():
    rng = np.random.default_rng(4)
    members, nonmembers = rng.normal(0.3, 1, 400), rng.normal(0, 1, 400)
    first = membership.attack(members, nonmembers, name="a", seed=7, resamples=200)
    again = membership.attack(members, nonmembers, name="a", seed=7, resamples=200)
    other = membership.attack(members, nonmembers, name="a", seed=8, resamples=200)
    assert first == again
    assert (first.auc.low, first.auc.high) != (other.auc.low, other.auc.high)


def test_the_bootstrap_resamples_members_and_nonmembers_each_from_their_own():
    seen = []

    def statistics(members: np.ndarray, nonmembers: np.ndarray) -> tuple[float]:
        seen.append((len(members), len(nonmembers), members.min(), nonmembers.max()))
        return (0.0,)

    membership.stratified_bootstrap(statistics, np.ones(10), np.zeros(990), seed=0, resamples=50)
    assert len(seen) == 51 and set(seen) == {(10, 990, 1.0, 0.0)}


def test_dp_bound_is_e_to_the_epsilon_times_fpr_plus_delta_capped_at_1():
    assert membership.dp_bound_tpr(1.0, 1e-5) == pytest.approx(math.e * 0.01 + 1e-5)
    assert membership.dp_bound_tpr(10.0, 1e-5) == 1.0
    with pytest.raises(ValueError):
        membership.dp_bound_tpr(-1.0, 0.0)


def test_a_tpr_above_the_dp_bound_is_flagged_violated_and_one_under_it_within():
    rng = np.random.default_rng(5)
    leaky = membership.attack(
        rng.uniform(1, 2, 1000), rng.uniform(0, 1, 1000), name="leaky", seed=0, epsilon=1.0,
        delta=1e-5,
    )  # fmt: skip
    assert leaky.dp is not None and leaky.dp.violated and not leaky.dp.within
    private = membership.attack(
        rng.normal(size=1000), rng.normal(size=1000), name="private", seed=0, epsilon=8.0,
        delta=1e-5,
    )  # fmt: skip
    assert private.dp is not None and private.dp.within and not private.dp.violated
    assert membership.attack(np.ones(3), np.zeros(3), name="no ε", seed=0).dp is None


def test_to_dict_is_json_with_every_figure():
    result = membership.attack(
        np.arange(5.0), np.arange(5.0), name="distance", detail="pixels", seed=0, epsilon=2.0
    )
    values = json.loads(json.dumps(result.to_dict()))
    assert set(values) == {
        "name", "detail", "members", "nonmembers", "auc", "tpr_at_fpr", "fpr",
        "fpr_achieved", "seed", "dp",
    }  # fmt: skip
    assert set(values["auc"]) == {"value", "low", "high"}
    assert values["dp"]["bound"] == pytest.approx(math.exp(2.0) * 0.01)


def test_non_finite_scores_are_refused():
    with pytest.raises(ValueError, match="non-finite"):
        membership.attack(np.array([1.0, np.nan]), np.zeros(2), name="x", seed=0)


def test_a_candidate_in_the_generated_set_scores_0_the_maximum():
    generated = torch.rand(50, 3, 8, 8, generator=torch.Generator().manual_seed(0)) * 255
    others = torch.rand(9, 3, 8, 8, generator=torch.Generator().manual_seed(1)) * 255
    candidates = torch.cat([generated[17:18], others])
    scores = membership.distance_scores(candidates, generated)
    assert scores.shape == (10,) and scores.dtype == np.float64
    assert scores[0] == 0.0
    assert (scores[1:] < 0).all()


def test_distance_scores_are_minus_the_nearest_generated_distance():
    rng = torch.Generator().manual_seed(1)
    candidates, generated = torch.randn(20, 16, generator=rng), torch.randn(30, 16, generator=rng)
    expected = -torch.cdist(candidates.double(), generated.double()).min(dim=1).values
    assert np.allclose(membership.distance_scores(candidates, generated), expected.numpy())


def test_members_and_nonmembers_are_equal_in_number_up_to_at_most():
    chosen = membership.choose_members(8000, 2000, seed=0, at_most=1500)
    assert chosen.count == 1500 and len(chosen.members) == len(chosen.nonmembers) == 1500
    assert chosen.enough
    assert len(set(chosen.members.tolist())) == 1500 and chosen.members.max() < 8000
    assert chosen.nonmembers.max() < 2000


def test_fewer_held_out_images_than_at_least_are_all_used_and_said_not_enough():
    chosen = membership.choose_members(8000, 300, seed=0)
    assert chosen.count == 300 and not chosen.enough
    assert chosen.to_dict() == {"count": 300, "enough": False, "seed": 0}


def test_the_choice_of_candidates_is_seeded():
    first, again = (membership.choose_members(5000, 5000, seed=3) for _ in range(2))
    other = membership.choose_members(5000, 5000, seed=4)
    assert np.array_equal(first.members, again.members)
    assert not np.array_equal(first.members, other.members)


def test_an_audit_without_held_out_images_is_refused():
    with pytest.raises(ValueError, match="held-out"):
        membership.choose_members(100, 0, seed=0)
