"""The memorization audit on planted data: scikit-learn's digits with a black 1-px frame
(10 × 10, as MNIST digits have a black margin), and Gaussian features."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from models import datasets
from models.errors import Stopped
from models.metrics.memorization import audit
from models.metrics.memorization_figures import MemorizationAudit, MemorizationConfig, gallery
from models.metrics.neighbours import _translate

QUICK = MemorizationConfig(resamples=100)


def framed(images: torch.Tensor) -> torch.Tensor:
    """uint8 (n, 1, 8, 8) -> float (n, 1, 10, 10) in [0, 1] with a black frame."""
    return torch.nn.functional.pad(images, (1, 1, 1, 1)).float() / 255


@pytest.fixture(scope="module")
def digits() -> dict[str, torch.Tensor]:
    train = framed(datasets.load("digits", "train").images)
    test = framed(datasets.load("digits", "test").images)
    return {"train": train, "fresh": test[:180], "holdout": test[180:]}


def run(generated: torch.Tensor, digits: dict, **kw) -> MemorizationAudit:
    kw.setdefault("config", QUICK)
    return audit(generated, digits["train"], digits["holdout"], space="pixels", seed=0, **kw)


def test_an_exact_copy_is_flagged_under_every_criterion_and_tops_the_gallery(digits):
    generated = torch.cat([digits["fresh"][:40], digits["train"][7:8], digits["fresh"][40:80]])
    result = run(generated, digits)
    s = result.generated
    assert s.copies("ratio")[40] and s.copies("calibrated")[40] and not s.authentic[40]
    assert s.d1[40] == 0 and s.nearest[40] == 7
    top = gallery(result, count=3)[0]
    assert (top.generated, top.train, top.d1, top.copy) == (40, 7, 0.0, True)
    assert top.d2 == pytest.approx(float(s.d2[40]))


def test_held_out_real_images_are_not_copies_by_the_headline(digits):
    result = run(digits["fresh"], digits)
    assert result.headline == "ratio"
    assert not result.generated.copies("ratio").any()
    assert result.figures["copy_fraction"].value.value == 0.0
    assert result.figures["copy_fraction"].floor.value == 0.0


def test_noise_and_one_pixel_shift_copies_are_flagged(digits):
    rng = np.random.default_rng(0)
    originals = digits["train"][:30]
    noise = torch.from_numpy(rng.integers(-2, 3, size=tuple(originals.shape))).float() / 255
    noisy = (originals + noise).clamp(0, 1)
    moves = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]
    shifted = torch.cat([_translate(originals[i : i + 1], *moves[i % 8]) for i in range(30)])
    result = run(torch.cat([noisy, shifted]), digits)
    s = result.generated
    assert s.copies("ratio").all() and s.copies("calibrated").all()
    assert (s.nearest == np.tile(np.arange(30), 2)).all()


def test_the_plain_l2_misses_one_pixel_shifts_that_the_audit_catches(digits):
    shifted = _translate(digits["train"][:30], 0, 1)
    plain = run(shifted, digits, config=MemorizationConfig(shift=0, resamples=100))
    assert plain.generated.copies("ratio").mean() < 0.5
    assert run(shifted, digits).generated.copies("ratio").all()


def test_dcr_share_of_copies_is_one_and_of_fresh_samples_about_half():
    # As many training as held-out images, so the DCR's training subsample is all of them.
    rng = np.random.default_rng(0)
    train, holdout = torch.randn(2000, 8, generator=torch.Generator().manual_seed(1)).split(1000)
    fresh = torch.from_numpy(rng.normal(size=(1000, 8))).float()
    copies = train[torch.from_numpy(rng.choice(1000, 500, replace=False))]
    by = {}
    for name, generated in (("fresh", fresh), ("copies", copies)):
        result = audit(generated, train, holdout, space="features", seed=0, config=QUICK)
        by[name] = result.figures["dcr_share"]
    assert by["copies"].value.value == 1.0
    assert abs(by["fresh"].value.value - 0.5) < 0.05
    assert by["fresh"].value.low < 0.5 < by["fresh"].value.high
    assert abs(by["fresh"].floor.value - 0.5) < 0.08


def test_dcr_share_is_the_same_whether_the_subsample_is_searched_or_read_off(digits):
    """Few neighbours kept: most images have none in the training subsample, so it is
    searched; with 50, most are read off the neighbours already found."""
    few, many = (
        run(digits["fresh"], digits, config=MemorizationConfig(neighbours=n, resamples=100))
        for n in (2, 50)
    )
    assert (few.generated.closer_to_train == many.generated.closer_to_train).all()
    assert (few.holdout.closer_to_train == many.holdout.closer_to_train).all()


def brute_force_authentic(generated: np.ndarray, train: np.ndarray) -> np.ndarray:
    """Alaa et al.'s definition, written out: j is authentic unless it is closer to its
    nearest training image i* than i* is to its nearest other training image."""
    to_train = np.linalg.norm(generated[:, None] - train[None], axis=-1)
    within = np.linalg.norm(train[:, None] - train[None], axis=-1)
    np.fill_diagonal(within, np.inf)
    star = to_train.argmin(axis=1)
    return to_train.min(axis=1) >= within[star].min(axis=1)


def test_authenticity_matches_a_brute_force_of_the_definition():
    rng = np.random.default_rng(3)
    train = rng.normal(size=(60, 5))
    generated = np.concatenate([rng.normal(size=(40, 5)), train[:5] + 1e-3, train[5:8]])
    holdout = rng.normal(size=(30, 5))
    result = audit(
        torch.from_numpy(generated),
        torch.from_numpy(train),
        torch.from_numpy(holdout),
        space="features",
        seed=0,
        config=QUICK,
    )
    expected = brute_force_authentic(generated, train)
    assert (result.generated.authentic == expected).all()
    assert not expected[40:].any()  # the copies
    assert 0 < expected.sum() < 40
    assert result.figures["authenticity"].value.value == pytest.approx(expected.mean())
    floor = brute_force_authentic(holdout, train)
    assert result.figures["authenticity"].floor.value == pytest.approx(floor.mean())


def shifted_distances(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """(n, m): min over the 9 one-pixel translations of a[i] of ‖T a[i] − b[j]‖, float64."""
    moves = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    flat = b.reshape(len(b), -1).double()
    return np.min(
        [torch.cdist(_translate(a, *m).reshape(len(a), -1).double(), flat).numpy() for m in moves],
        axis=0,
    )


def test_authenticity_in_pixels_matches_a_brute_force_of_the_definition(digits):
    train, holdout = digits["train"][:300], digits["holdout"][:40]
    generated = torch.cat([digits["fresh"][:60], train[:6], _translate(train[6:9], 1, 0)])
    result = audit(generated, train, holdout, space="pixels", seed=0, config=QUICK)
    to_train, within = shifted_distances(generated, train), shifted_distances(train, train)
    np.fill_diagonal(within, np.inf)
    star = to_train.argmin(axis=1)
    expected = to_train.min(axis=1) >= within[star].min(axis=1)
    assert (result.generated.authentic == expected).all()
    assert not expected[60:].any() and 0 < expected[:60].sum() < 60


def test_intervals_are_seeded(digits):
    first = run(digits["fresh"][:60], digits).to_dict()
    again = run(digits["fresh"][:60], digits).to_dict()
    other = audit(
        digits["fresh"][:60], digits["train"], digits["holdout"], space="pixels", seed=1,
        config=QUICK,
    ).to_dict()  # fmt: skip
    assert first == again
    assert first["figures"]["authenticity"] != other["figures"]["authenticity"]


def test_to_dict_is_json_ready_with_counts_and_no_long_arrays(digits):
    result = run(digits["fresh"], digits).to_dict()
    assert json.loads(json.dumps(result)) == result
    assert result["counts"] == {"generated": 180, "train": 1438, "holdout": 179}
    assert set(result["figures"]) == {
        "copy_fraction", "ratio_copies", "calibrated_copies", "dcr_share", "authenticity"
    }  # fmt: skip
    for figure in result["figures"].values():
        assert figure["value"]["low"] <= figure["value"]["value"] <= figure["value"]["high"]
        assert {"floor", "detail", "better", "unit", "label"} <= figure.keys()
    assert len(result["gallery"]) == 16 and "ratio" in result["summary"]
    longest = max(len(v) for v in _lists(result))
    assert longest <= 16


def _lists(tree) -> list[list]:
    if isinstance(tree, dict):
        return [x for v in tree.values() for x in _lists(v)]
    if isinstance(tree, list):
        return [tree, *(x for v in tree for x in _lists(v))]
    return []


def test_should_stop_raises_stopped(digits):
    with pytest.raises(Stopped):
        run(digits["fresh"], digits, should_stop=lambda: True)


def test_images_of_different_shapes_are_refused(digits):
    with pytest.raises(ValueError, match="shape"):
        audit(digits["fresh"][:, :, :8, :8], digits["train"], digits["holdout"], space="p", seed=0)
