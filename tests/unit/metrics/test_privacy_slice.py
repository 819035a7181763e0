"""The privacy audit leaves out the training images keep-best held out of the optimiser."""

import pytest
import torch

from models.datasets import ImageDataset
from models.engines.runtime import holdout
from models.metrics import privacy
from models.metrics.errors import MetricsError


def _data(n: int) -> ImageDataset:
    # Each image holds its own row number, so a subset says which rows it kept.
    images = torch.arange(n).to(torch.uint8).view(n, 1, 1, 1).expand(n, 1, 4, 4).clone()
    return ImageDataset(
        name="toy",
        split="train",
        images=images,
        labels=torch.arange(n) % 3,
        num_classes=3,
        class_names=["a", "b", "c"],
    )


def test_members_are_what_the_optimiser_trained_on():
    data = _data(200)
    trained_on, held, where = holdout.held_out(data, None, seed=7)
    assert where["source"] == "slice" and where["count"] == 20

    members, note = privacy._without_slice(data, where, "toy:train")

    assert members.images[:, 0, 0, 0].tolist() == trained_on.images[:, 0, 0, 0].tolist()
    assert set(members.images[:, 0, 0, 0].tolist()).isdisjoint(held.images[:, 0, 0, 0].tolist())
    assert members.labels.tolist() == trained_on.labels.tolist()
    assert "20 of the 200 images in toy:train were held out of training" in note


def test_a_split_that_changed_size_is_refused():
    _, _, where = holdout.held_out(_data(200), None, seed=7)
    with pytest.raises(MetricsError, match="now has 150"):
        privacy._without_slice(_data(150), where, "toy:train")
