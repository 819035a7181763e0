import json
import re
from pathlib import Path

import pytest
import torch

from models import datasets
from models.metrics import evaluate as evaluate_module
from models.metrics.errors import MetricsError
from models.metrics.evaluate import METRICS, EvaluationConfig, SyntheticSource, evaluate
from models.metrics.privacy import PrivacyInputs
from models.metrics.report import GeneratorInfo
from models.metrics.utility import DataDescription, UtilityConfig

from .conftest import FAST_CLASSIFIER, TINY_CLASSIFIER, take

GENERATOR = GeneratorInfo(
    name="digits-ddpm:1",
    engine="ddpm",
    version_id="mv_123",
    training_data=DataDescription("digits", "train", 300),
    config={"max_steps": 100},
    training_curve=[{"step": s, "loss": 1 / (1 + s)} for s in range(0, 100, 10)],
)


def _source(digits_train, n: int = 120, batch: int = 50) -> SyntheticSource:
    """Stand-in samples: noisy train images with their labels as the condition."""
    data = take(digits_train, n)
    noise = torch.randint(-30, 31, data.images.shape, generator=torch.Generator().manual_seed(1))
    images = (data.images.int() + noise).clamp(0, 255).to(torch.uint8)
    batches = [(images[i : i + batch], data.labels[i : i + batch]) for i in range(0, n, batch)]
    return SyntheticSource(batches=batches, count=n)


@pytest.fixture(scope="module")
def report_and_stages(digits_train, tmp_path_factory):
    def load(name, split, image_size=None):
        data = datasets.load(name, split, image_size=image_size)
        return take(data, 300 if split == "train" else 120)

    stages = []
    report = evaluate(
        synthetic=_source(digits_train),
        reference="digits:test",
        metrics=[m for m in METRICS if m != "inception_score"],
        generator=GENERATOR,
        cache_dir=tmp_path_factory.mktemp("cache"),
        features="classifier",
        config=EvaluationConfig(
            batch_size=64,
            keep=200,
            kid_subsets=5,
            kid_subset_size=50,
            grid_per_class=4,
            tsne_points=60,
            reference_classifier=FAST_CLASSIFIER,
            utility=UtilityConfig(subset_sizes=(5,), classifier=TINY_CLASSIFIER),
        ),
        code_version="abc123",
        progress=lambda stage, done, total: stages.append((stage, done, total)),
        load_dataset=load,
        privacy_inputs=PrivacyInputs(train="digits:train", holdout="digits:test"),
        features_note='features "auto" chose the classifier',
    )
    return report, stages


DISTANCE_KEYS = {"fd", "kid", "precision", "recall"}


def test_every_figure_names_its_features(report_and_stages):
    report, _ = report_and_stages
    distances = [m for m in report.metrics if m.key in DISTANCE_KEYS]
    labels = {m.label for m in distances}
    assert labels == {
        "FD (digits classifier)",
        "KID (digits classifier)",
        "Precision (digits classifier)",
        "Recall (digits classifier)",
    }
    assert all(m.features == "digits classifier (8px)" for m in distances)
    assert not any("FID" in m.label for m in report.metrics)


def test_classifier_feature_space_is_recorded_and_every_value_has_a_unit(report_and_stages):
    report, _ = report_and_stages
    assert report.to_dict()["feature_space"] == "classifier"
    assert all(m.unit for m in report.metrics)
    kid = next(m for m in report.metrics if m.key == "kid")
    assert "raw" in kid.unit and "× 10³" in kid.unit
    assert "FD, not FID" in report.to_html()


def test_how_the_feature_space_was_chosen_is_said_in_json_and_html(report_and_stages):
    report, _ = report_and_stages
    assert report.to_dict()["features_note"] == 'features "auto" chose the classifier'
    assert "(features &quot;auto&quot; chose the classifier)." in report.to_html()


@pytest.mark.parametrize(
    ("features", "metrics", "named"),
    [
        ("inception", ["fid", "kid", "class_coverage"], "fid, kid need Inception-v3 weights"),
        ("classifier", ["fid", "inception_score"], "inception_score need Inception-v3 weights"),
    ],
)
def test_metrics_in_inception_features_without_weights_are_refused_before_any_work(
    digits_train, tmp_path, features, metrics, named
):
    def no_data(*_args, **_kwargs):
        raise AssertionError("refused requests must not load data")

    with pytest.raises(MetricsError, match=named) as refused:
        evaluate(
            synthetic=_source(digits_train),
            reference="digits:test",
            metrics=metrics,
            generator=GENERATOR,
            cache_dir=tmp_path,
            features=features,
            inception_weights=tmp_path / "missing.pth",
            load_dataset=no_data,
        )
    assert "SYNTHGEN_INCEPTION_WEIGHTS" in str(refused.value)
    assert ("features: 'classifier'" in str(refused.value)) == (features == "inception")


def test_each_distance_has_a_real_vs_real_floor_below_it(report_and_stages):
    report, _ = report_and_stages
    fd = next(m for m in report.metrics if m.key == "fd")
    assert 0 < fd.floor < fd.value
    assert report.floor_pair == "digits:train (300 images) and digits:test (120 images)"


def test_report_json_records_counts_seeds_versions_and_leakage(report_and_stages):
    report, _ = report_and_stages
    data = json.loads(json.dumps(report.to_dict()))
    assert data["counts"] == {"synthetic": 120, "reference": 120, "kept_per_set": 200}
    assert data["seeds"] == [0, 1, 2]
    assert data["code_version"] == "abc123"
    assert data["generator"]["version_id"] == "mv_123"
    assert data["reference_classifier"]["trained_on"] == "300 images of digits:train"
    assert data["class_coverage"]["classes_present"] > 0
    assert any(
        "neither the generator nor any" in s for s in data["classifier_utility"]["data_seen"]
    )


def test_report_html_is_self_contained(report_and_stages, tmp_path):
    report, _ = report_and_stages
    page = report.to_html()
    (tmp_path / "report.html").write_text(page)
    assert "$" not in re.sub(r"<code>.*?</code>", "", page, flags=re.S)  # every slot filled
    sources = re.findall(r"""(?:src|href)=['"]([^'"]+)""", page)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "<svg" in page and "<polyline" in page  # training curves
    assert "What real data each model saw" in page


def test_progress_reports_each_stage_to_completion(report_and_stages):
    _, stages = report_and_stages
    finished = [stage for stage, done, total in stages if done == total]
    for stage in ("reference classifier", "synthetic features", "classifier utility", "figures"):
        assert stage in finished


class StandInInception:
    """InceptionFeatures' interface over a fixed 16-d projection of the pixels.

    The real network costs seconds per image on CPU and is checked in test_inception.py;
    here only evaluate's handling of Inception features is under test.
    """

    name = "Inception-v3 pool3 (stand-in)"
    tag = "Inception-v3"
    standard = True
    dim = 16
    num_logits = 7

    def __init__(self, weights: Path, device: str = "cpu") -> None:
        self.weights = weights
        generator = torch.Generator().manual_seed(0)
        self.projection = torch.randn(64, self.dim + self.num_logits, generator=generator)

    def __call__(self, images):
        return self.with_logits(images)[0]

    def with_logits(self, images):
        out = (images.reshape(images.shape[0], -1).float() / 255) @ self.projection
        return out[:, : self.dim].numpy(), out[:, self.dim :].numpy()


def test_inception_metrics_are_called_fid_when_weights_exist(
    digits_train, tmp_path, fast_config, monkeypatch
):
    monkeypatch.setattr(evaluate_module, "InceptionFeatures", StandInInception)
    weights = tmp_path / "pt_inception.pth"
    weights.touch()
    report = evaluate(
        synthetic=_source(digits_train, n=40, batch=16),
        reference="digits:test",
        metrics=["fid", "kid", "inception_score"],
        generator=GENERATOR,
        cache_dir=tmp_path,
        inception_weights=weights,
        config=fast_config,
        load_dataset=lambda name, split, image_size: take(
            datasets.load(name, split, image_size=image_size), 60 if split == "train" else 40
        ),
    )
    labels = {m.label for m in report.metrics}
    assert labels == {"FID (Inception-v3)", "KID (Inception-v3)", "IS (Inception-v3)"}
    assert report.feature_space == "inception"
    # The classifier still runs: it judges classes for coverage, the grid and t-SNE.
    assert [f.tag for f in report.features] == ["digits classifier", "Inception-v3"]


def test_unknown_metric_is_refused(digits_train, tmp_path):
    with pytest.raises(MetricsError, match="choose from"):
        evaluate(
            synthetic=_source(digits_train),
            reference="digits:test",
            metrics=["fid", "lpips"],
            generator=GENERATOR,
            cache_dir=tmp_path,
        )


def test_the_privacy_audit_sits_beside_its_floor_with_intervals(report_and_stages):
    report, _ = report_and_stages
    privacy = [m for m in report.metrics if m.key not in DISTANCE_KEYS]
    keys = {m.key for m in privacy}
    assert {"copy_fraction", "dcr_share", "authenticity", "membership_auc"} <= keys
    for m in privacy:
        low, high = m.interval
        assert low <= m.value <= high
        assert m.floor is not None
    spaces = {m.features for m in privacy if m.key == "copy_fraction"}
    assert spaces == {"pixels (8×8)", "features: digits classifier (8px)"}
    audit = report.to_dict()["privacy"]
    assert audit["training_set"] == "digits:train" and audit["held_out"] == "digits:test"
    assert audit["counts"] == {"synthetic": 120, "train": 300, "held_out": 120}
    assert len(audit["gallery"]) == 16


def test_the_report_shows_the_most_copy_like_images_beside_their_training_images(
    report_and_stages,
):
    report, _ = report_and_stages
    page = report.to_html()
    section = page.split("The most copy-like synthetic images", 1)[1]
    gallery = section.split("<div class='pairs'>", 1)[1].split("</div>", 1)[0]
    assert gallery.count("<figure><img") == 16
    assert "training image #" in gallery and "ratio" in gallery


def test_privacy_metrics_without_a_training_set_are_refused(digits_train, tmp_path):
    with pytest.raises(MetricsError, match="memorization need the model's training set"):
        evaluate(
            synthetic=_source(digits_train),
            reference="digits:test",
            metrics=["memorization"],
            generator=GENERATOR,
            cache_dir=tmp_path,
            features="classifier",
        )


def test_a_report_without_the_audit_says_why(digits_train, tmp_path, fast_config):
    report = evaluate(
        synthetic=_source(digits_train, n=40, batch=16),
        reference="digits:test",
        metrics=["class_coverage"],
        generator=GENERATOR,
        cache_dir=tmp_path,
        features="classifier",
        config=fast_config,
        load_dataset=lambda name, split, image_size: take(
            datasets.load(name, split, image_size=image_size), 60 if split == "train" else 40
        ),
        privacy_note="Not run: the training set of m:1 is unknown",
    )
    assert report.to_dict()["privacy"] is None
    assert report.to_dict()["privacy_note"].startswith("Not run")
    assert "Not run: the training set of m:1 is unknown" in report.to_html()
