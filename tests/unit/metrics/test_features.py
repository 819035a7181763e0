import json

import numpy as np
import pytest
import torch

from models.metrics.classifier import ClassifierConfig, build
from models.metrics.errors import MetricsError
from models.metrics.features import dataset_classifier, metric_label

from .conftest import FAST_CLASSIFIER, take


@pytest.fixture
def splits(digits_train, digits_test):
    return take(digits_train, 300), take(digits_test, 100)


def test_dataset_classifier_is_trained_once_then_loaded_from_cache(splits, tmp_path):
    train, test = splits
    first = dataset_classifier(train, test, tmp_path, FAST_CLASSIFIER)
    artifact = tmp_path / "digits-1x8x8"
    meta = json.loads((artifact / "classifier.json").read_text())
    assert (artifact / "classifier.safetensors").is_file()
    assert meta["dataset"] == "digits" and meta["train_split"] == "train"
    assert first.test_accuracy > 0.5
    again = dataset_classifier(train, test, tmp_path, FAST_CLASSIFIER)
    images = test.images[:16]
    np.testing.assert_array_equal(first(images), again(images))
    assert again.test_accuracy == first.test_accuracy


def test_a_cached_classifier_with_another_config_is_retrained(splits, tmp_path):
    train, test = splits
    dataset_classifier(train, test, tmp_path, FAST_CLASSIFIER)
    other = ClassifierConfig(epochs=1, min_steps=5, width=8)
    dataset_classifier(train, test, tmp_path, other)
    meta = json.loads((tmp_path / "digits-1x8x8" / "classifier.json").read_text())
    assert meta["config"]["min_steps"] == 5


def test_classifier_features_are_labelled_fd_never_fid(splits, tmp_path):
    extractor = dataset_classifier(*splits, tmp_path, FAST_CLASSIFIER)
    assert extractor.name == "digits classifier (8px)"
    assert metric_label("FD", extractor) == "FD (digits classifier)"
    assert extractor(splits[1].images[:3]).shape == (3, 128)


def test_images_of_another_size_are_refused(splits, tmp_path):
    extractor = dataset_classifier(*splits, tmp_path, FAST_CLASSIFIER)
    with pytest.raises(MetricsError, match="load the reference at the generator's image size"):
        extractor(torch.zeros((2, 1, 16, 16), dtype=torch.uint8))


def test_resnet18_without_torchvision_says_what_to_install():
    try:
        import torchvision  # noqa: F401
    except (ImportError, RuntimeError):
        with pytest.raises(MetricsError, match="torchvision"):
            build(ClassifierConfig(arch="resnet18"), 1, 10)
    else:
        assert build(ClassifierConfig(arch="resnet18"), 1, 10)(torch.zeros(2, 1, 8, 8)).shape == (
            2,
            10,
        )
