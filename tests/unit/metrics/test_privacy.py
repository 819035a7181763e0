"""The privacy audit as an evaluate job runs it (models.metrics.privacy.audit): both spaces,
the gallery beside the training images, the DP record and its bound check."""

import numpy as np
import pytest
import torch

from models import datasets
from models.metrics import privacy

DP = {"epsilon": 1.0, "delta": 1e-5, "noise_multiplier": 3.2}


@pytest.fixture(scope="module")
def digits():
    return datasets.load("digits", "train"), datasets.load("digits", "test")


def _audit(digits, wanted, dp=None):
    train, test = digits
    # 20 exact copies of training images among 80 unseen ones.
    synthetic = torch.cat([train.images[:20], test.images[:80]])

    def features(images):
        return images.reshape(len(images), -1).float().numpy()[:, :16].copy()

    return privacy.audit(
        wanted=wanted,
        synthetic_images=synthetic,
        synthetic_features=features(synthetic),
        train_images=train.images,
        train_labels=train.labels,
        train_features=features(train.images),
        holdout_images=test.images,
        holdout_labels=test.labels,
        holdout_features=features(test.images),
        space="toy features",
        inputs=privacy.PrivacyInputs(
            train="digits:train", holdout="digits:test", differential_privacy=dp
        ),
        seed=0,
    )


def test_copies_make_the_headline_and_the_gallery_shows_them_beside_their_source(digits):
    values, report = _audit(digits, {"memorization"})
    headline = next(v for v in values if v.key == "copy_fraction" and "pixels" in v.features)
    assert headline.value == pytest.approx(0.2) and headline.floor == 0.0
    assert {item["generated"] for item in report.gallery[:16]} <= set(range(20))
    assert all(item["generated"] == item["train"] for item in report.gallery[:16])
    assert len(report.gallery_pngs) == 16
    assert report.membership is None


def test_a_model_without_dp_is_said_to_have_no_bound(digits):
    _, report = _audit(digits, {"memorization"})
    assert report.differential_privacy is None
    assert any("not trained with differential privacy" in note for note in report.notes)


def test_a_dp_models_record_is_reported_even_without_an_attack(digits):
    _, report = _audit(digits, {"memorization"}, dp=DP)
    dp = report.differential_privacy
    assert dp["epsilon"] == 1.0 and dp["attacks"] == []
    assert dp["tpr_bound_at_1pct_fpr"] == pytest.approx(np.e * 0.01 + 1e-5)
    assert "no membership attack was asked" in report.to_html()


def test_every_attack_is_checked_against_the_bound_of_a_dp_model(digits):
    values, report = _audit(digits, {"membership_inference"}, dp=DP)
    rows = report.differential_privacy["attacks"]
    assert len(rows) == 2  # black-box in pixels and in features; no white-box given
    assert all(row["bound"] == pytest.approx(np.e * 0.01 + 1e-5) for row in rows)
    assert {v.key for v in values} == {"membership_auc"}
