import numpy as np
import pytest
import torch

from models.metrics.inception_score import InceptionScore

torchmetrics_inception = pytest.importorskip("torchmetrics.image.inception")


def _score(logits: np.ndarray, splits: int, batch: int = 37, seed: int = 0):
    score = InceptionScore(logits.shape[0], logits.shape[1], splits, seed)
    for start in range(0, logits.shape[0], batch):
        score.update(logits[start : start + batch])
    return score.compute()


def test_matches_torchmetrics_on_the_same_splits():
    n, splits = 200, 4
    logits = np.random.default_rng(0).normal(scale=3.0, size=(n, 12))
    ours = _score(logits, splits)
    # Our split of sample i is perm[i] * splits // n; order the input so torchmetrics'
    # randperm-then-chunk forms the same groups.
    split_of = np.random.default_rng(0).permutation(n) * splits // n
    by_split = np.argsort(split_of, kind="stable")
    torch.manual_seed(3)
    tm_perm = torch.randperm(n).numpy()
    ordered = np.empty_like(logits)
    ordered[tm_perm] = logits[by_split]
    metric = torchmetrics_inception.InceptionScore(feature=torch.nn.Identity(), splits=splits)
    metric.update(torch.from_numpy(ordered))
    torch.manual_seed(3)
    mean, std_unbiased = metric.compute()
    assert ours.mean == pytest.approx(mean.item(), rel=1e-9)
    # torchmetrics reports the Bessel-corrected std, we the original code's np.std.
    assert ours.std == pytest.approx(std_unbiased.item() * np.sqrt((splits - 1) / splits), rel=1e-9)


def test_confident_uniform_predictions_score_the_number_of_classes():
    logits = np.full((100, 10), -50.0)
    logits[np.arange(100), np.arange(100) % 10] = 50.0
    assert _score(logits, splits=1).mean == pytest.approx(10.0, rel=1e-6)


def test_one_class_everywhere_scores_one():
    logits = np.zeros((50, 5))
    logits[:, 2] = 40.0
    assert _score(logits, splits=5).mean == pytest.approx(1.0, rel=1e-6)


def test_class_ordered_streams_do_not_make_one_class_splits():
    logits = np.full((100, 10), -50.0)
    logits[np.arange(100), np.arange(100) // 10] = 50.0  # class-sorted stream
    assert _score(logits, splits=10).mean > 5.0


def test_a_short_stream_is_refused():
    score = InceptionScore(20, 3, splits=2)
    score.update(np.zeros((10, 3)))
    with pytest.raises(ValueError, match="expected 20 samples, got 10"):
        score.compute()
