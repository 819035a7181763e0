"""The DP consistency check of the audit (issue 25): a model trained with (ε, δ)-DP shows
no attack above the bound e^ε · FPR + δ, where the same recipe without DP does.

16 digits fitted for 200 steps: without privacy, the white-box attack (noise-prediction
loss) catches training images far above what ε = 1 allows, so the check can fail; with
privacy at ε = 1 it stays within the bound. A bug that trained a "private" model without
noise or clipping would fail the second test.
"""

import pytest

from models import datasets, engines
from models.metrics import membership

from .test_membership_scores import DDPM_TINY

EPSILON, DELTA = 1.0, 1e-3
RECIPE = {**DDPM_TINY, "max_steps": 200, "batch_size": 8, "lr": 2e-3, "ema_decay": 0.0}


def _white_box(privacy):
    train = datasets.load("digits", "train", count=16)
    held_out = datasets.load("digits", "test", count=16)
    engine = engines.get("ddpm")
    trained = engine.train(train, {**RECIPE, "privacy": privacy})
    scores = [
        engine.membership_scores(trained, data.images, data.labels, seed=0)
        for data in (train, held_out)
    ]
    return membership.attack(*scores, name="white-box", seed=0, epsilon=EPSILON, delta=DELTA)


@pytest.fixture(scope="module")
def without_privacy():
    return _white_box(None)


def test_the_attack_exceeds_the_bound_on_the_same_recipe_without_privacy(without_privacy):
    assert without_privacy.dp.violated, without_privacy.to_dict()


def test_a_model_private_at_epsilon_1_stays_within_what_epsilon_allows(without_privacy):
    private = _white_box({"epsilon": EPSILON, "delta": DELTA, "max_grad_norm": 1.0})
    assert not private.dp.violated, private.to_dict()
    assert private.tpr.value <= without_privacy.tpr.value
