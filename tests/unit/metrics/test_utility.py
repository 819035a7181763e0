import pytest
import torch

from models.datasets import ImageDataset
from models.metrics.errors import MetricsError
from models.metrics.utility import (
    DataDescription,
    UtilityConfig,
    classifier_utility,
    per_class_subset,
)

from .conftest import TINY_CLASSIFIER, take


@pytest.fixture
def real(digits_train, digits_test):
    return take(digits_train, 300), take(digits_test, 100)


def _synthetic(train: ImageDataset) -> ImageDataset:
    """Stand-in samples: noisy copies of real train images (never test images)."""
    noise = torch.randint(-20, 21, train.images.shape, generator=torch.Generator().manual_seed(0))
    images = (train.images.int() + noise).clamp(0, 255).to(torch.uint8)
    return ImageDataset("synthetic", "g", images, train.labels, 10, train.class_names)


def _run(real, generator_data, seeds=(0, 1, 2)):
    train, test = real
    return classifier_utility(
        train=train,
        test=test,
        synthetic=_synthetic(train),
        generator_data=generator_data,
        config=UtilityConfig(subset_sizes=(3,), classifier=TINY_CLASSIFIER),
        seeds=seeds,
    )


@pytest.fixture(scope="module")
def result(digits_train, digits_test):
    return _run(
        (take(digits_train, 300), take(digits_test, 100)), DataDescription("digits", "train", 300)
    )


def test_every_setting_is_scored_for_every_seed(result):
    assert [r.setting for r in result.rows] == [
        "TRTR",
        "TSTR",
        "real 3/class",
        "real 3/class + synthetic",
    ]
    assert all(len(r.accuracies) == 3 for r in result.rows)
    assert result.rows[2].real_images == 30 and result.rows[3].synthetic_images == 300
    gain = result.gains[0]
    assert gain.gains == pytest.approx(
        [a - b for a, b in zip(result.rows[3].accuracies, result.rows[2].accuracies, strict=True)]
    )


def test_report_states_what_real_data_each_model_saw(result):
    statement = " ".join(result.data_seen)
    assert "100 images of digits:test, which neither the generator nor any classifier" in statement
    assert "The generator was trained on 300 images of digits:train" in statement
    assert "TRTR classifiers saw 300 real images of digits:train" in statement
    assert "'real 3/class + synthetic' classifiers saw the same 30 real images" in statement
    # The generator saw more real data than the 3/class classifier: the gain is qualified.
    assert "includes what the generator learnt from those extra real images" in statement


def test_a_generator_trained_on_the_test_split_is_refused(real):
    with pytest.raises(MetricsError, match="generator was trained on digits:test"):
        _run(real, DataDescription("digits", "test", 100))


def test_fewer_than_three_seeds_are_refused(real):
    with pytest.raises(MetricsError, match="at least 3 seeds"):
        _run(real, DataDescription("digits", "train", 300), seeds=(0, 1))


def test_per_class_subset_draws_that_many_of_each_class():
    labels = torch.arange(5).repeat(20)
    idx = per_class_subset(labels, 4, seed=0)
    assert torch.bincount(labels[idx]).tolist() == [4] * 5
    assert not torch.equal(idx, per_class_subset(labels, 4, seed=1))
