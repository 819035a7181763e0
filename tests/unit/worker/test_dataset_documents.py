"""README.md (the dataset card) and croissant.json written beside every generated set."""

import datetime
import json
import re

import numpy as np
import pytest
import yaml

from core.storage import LocalStorage
from tests import croissant_cache
from worker import formats
from worker.formats import card, documents
from worker.formats.description import Description, evaluations_of

CLASSES = ["zero", "one", "two"]
EVALUATION = {
    "evaluation mnist:test": {
        "job_id": "ev-1",
        "reference": "mnist:test",
        "synthetic_count": 1000,
        "features": "classifier",
        "feature_space": "reference dataset classifier (FD, not FID)",
        "metrics": {
            "FD": {"value": 12.5, "std": 0.4, "interval": [11.7, 13.3], "floor": 1.25},
        },
        "privacy": {
            "audited": True,
            "training_set": "mnist:train",
            "copy_fraction": 0.0125,
            "copy_fraction_floor": 0.002,
            "criterion": "nearest training image closer than 0.1",
            "space": "pixels",
            "membership_inference": [
                {"name": "loss", "auc": 0.531, "tpr_at_fpr": 0.018, "fpr": 0.01}
            ],
        },
    },
    "steps": 100,  # not an evaluation: left out
}
DP = {"epsilon": 8.0, "delta": 1e-5, "noise_multiplier": 1.1, "steps": 300, "max_grad_norm": 1.0}


@pytest.fixture(autouse=True)
def _croissant_cache(monkeypatch, tmp_path):
    croissant_cache.isolate(monkeypatch, tmp_path / "croissant-extract")


@pytest.fixture()
def store(tmp_path):
    return LocalStorage(root=tmp_path / "store", public_url="http://h", signing_secret="s")


def _job(
    store,
    workdir,
    fmt,
    *,
    dataset="mnist:train",
    metrics=None,
    privacy=None,
    total=12,
    shard_samples=5,
):
    target = formats.Target(
        store, "jobs/j", workdir, total, (1, 8, 8), CLASSES, "mv-1", 2**30, shard_samples
    )
    writer = formats.writer(fmt, target)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (total, 1, 8, 8), dtype=np.uint8)
    writer.add(images, np.arange(total) % 3, np.full(total, 9))
    objects = writer.finish()
    description = Description(
        job_id="job-1",
        kind="generate",
        created_at=datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC),
        output_format=fmt,
        location=writer.location,
        count=writer.count,
        image_shape=(1, 8, 8),
        class_names=CLASSES,
        counts=writer.manifest.counts,
        files={name: obj.size for name, obj in objects},
        sha256=writer.sha256,
        sampling={"seed": 3, "config": {"sampler": "ddim", "steps": 50}},
        model={
            "id": "mv-1",
            "name": "digits-ddpm",
            "version": 2,
            "engine": "ddpm",
            "dataset": dataset,
            "train_job_id": "train-1",
            "config": {"steps": 500},
        },
        lineage={
            "created_by": "train",
            "dataset": {"ref": dataset, "sha256": "ab" * 32},
            "code_version": "synthgen 0.1.0 (abc123)",
            "privacy": privacy,
        },
        evaluations=evaluations_of(metrics),
        code_version="synthgen 0.1.0 (abc123)",
    )
    documents.write(store, "jobs/j", description)
    return store.path_of("jobs/j"), images


def _card(folder):
    text = (folder / "README.md").read_text()
    _, meta, body = text.split("---\n", 2)
    return yaml.safe_load(meta), body


@pytest.mark.parametrize("fmt", sorted(formats.FORMATS))
def test_croissant_record_validates_and_iterates_every_image(store, tmp_path, fmt):
    import mlcroissant as mlc

    folder, images = _job(store, tmp_path, fmt)
    dataset = mlc.Dataset(jsonld=str(folder / "croissant.json"))
    assert not dataset.metadata.ctx.issues.errors
    classes = list(dataset.records("classes"))
    assert [(r["classes/label"], r["classes/name"]) for r in classes] == list(enumerate(CLASSES))
    manifest = list(dataset.records("manifest"))
    assert [r["manifest/label"] for r in manifest] == [i % 3 for i in range(12)]
    if fmt == "npz":  # no Croissant reader for .npz: the manifest describes its images
        assert [rs.id for rs in dataset.metadata.record_sets] == ["classes", "manifest"]
        return
    got = list(dataset.records("images"))
    assert len(got) == 12
    for record in got:  # records of several archives come in no set order: match by name
        if "images/index" in record:
            index = record["images/index"]
        else:
            index = int(re.search(rb"(\d+)\.png$", record["images/file"]).group(1))
        pixels = np.asarray(record["images/image"].convert("L"))
        np.testing.assert_array_equal(pixels, images[index, 0])


def test_croissant_lists_each_shard_with_its_checksum(store, tmp_path):
    import hashlib

    folder, _ = _job(store, tmp_path, "webdataset")
    record = json.loads((folder / "croissant.json").read_text())
    files = {d["@id"]: d for d in record["distribution"] if d["@type"] == "cr:FileObject"}
    assert sorted(files) == ["manifest.csv", *(f"webdataset/train-{i:06d}.tar" for i in range(3))]
    for name, entry in files.items():
        assert entry["sha256"] == hashlib.sha256((folder / name).read_bytes()).hexdigest()


def test_card_front_matter_says_what_the_hub_reads(store, tmp_path):
    meta, body = _card(_job(store, tmp_path, "png", dataset="fashion_mnist:train")[0])
    assert meta["license"] == "mit"
    assert meta["annotations_creators"] == ["machine-generated"]
    assert meta["source_datasets"] == ["fashion_mnist"]
    assert meta["task_categories"] == ["image-classification"]
    assert meta["size_categories"] == ["n<1K"]
    assert "synthetic" in meta["tags"]
    assert "inherited from the training set, fashion_mnist" in body


def test_card_license_is_other_and_says_why_when_the_data_declares_none(store, tmp_path):
    meta, body = _card(_job(store, tmp_path, "npz", dataset="cifar10:train")[0])
    assert meta["license"] == "other"
    assert "cifar10, declares no license" in body


def test_card_renders_lineage_sampling_counts_evaluation_and_privacy(store, tmp_path):
    folder, _ = _job(store, tmp_path, "parquet", metrics=EVALUATION, privacy=DP)
    _, body = _card(folder)
    assert "digits-ddpm:2 (`mv-1`)" in body and "train job `train-1`" in body
    assert "ab" * 32 in body  # the training data's hash
    assert '"sampler": "ddim"' in body
    assert "| 0 | zero | 4 |" in body and "| 2 | two | 4 |" in body
    assert "evaluate job ev-1" in body
    assert "| FD | 12.5 ± 0.4 (95 % interval 11.7 to 13.3) | 1.25 |" in body
    assert "ε = 8.0, δ = 1e-05" in body
    assert "0.0125 of the images (real-vs-real floor 0.002)" in body
    assert "AUC 0.531, TPR 0.018 at 0.01 FPR" in body


def test_card_says_when_nothing_was_measured(store, tmp_path):
    _, body = _card(_job(store, tmp_path, "png")[0])
    assert "No evaluate job has been run on this model version yet" in body
    assert "not trained with differential privacy" in body
    assert "No privacy audit" in body


def test_a_parquet_set_loads_from_its_folder_by_the_cards_configs(store, tmp_path):
    import datasets

    folder, images = _job(store, tmp_path, "parquet")
    ds = datasets.load_dataset(str(folder), split="train", cache_dir=str(tmp_path / "cache"))
    assert ds.features["label"].names == CLASSES
    assert len(ds) == 12
    np.testing.assert_array_equal(np.asarray(ds[5]["image"]), images[5, 0])


def test_size_categories_follow_the_hubs_bounds():
    assert [card.size_category(n) for n in (999, 1000, 60_000, 2_000_000)] == [
        "n<1K",
        "1K<n<10K",
        "10K<n<100K",
        "1M<n<10M",
    ]


def _readme_snippets() -> list[str]:
    from pathlib import Path

    readme = (Path(__file__).parents[3] / "README.md").read_text()
    section = readme.split("## Loading a generated set", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_the_readmes_three_line_snippets_load_a_generated_set(store, tmp_path, monkeypatch):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    snippets = _readme_snippets()
    assert len(snippets) == 3 and all(len(s.strip().splitlines()) == 3 for s in snippets)
    parquet, webdataset, croissant = snippets
    for fmt, snippet in (("parquet", parquet), ("webdataset", webdataset)):
        home = tmp_path / fmt
        store = LocalStorage(root=home / "store", public_url="http://h", signing_secret="s")
        (home / "work").mkdir(parents=True)
        folder, images = _job(store, home / "work", fmt, total=12, shard_samples=2)
        (home / "store" / "jobs" / "j").rename(home / "set")
        monkeypatch.chdir(home)
        for code in (snippet, croissant):
            scope: dict = {}
            exec(code, scope)  # noqa: S102 - the README's own lines
            image = scope["image"] if "image" in scope else scope["record"]["images/image"]
            assert image.size == (8, 8)


def test_an_imported_models_card_says_its_training_data_is_unknown(store, tmp_path):
    meta, body = _card(_job(store, tmp_path, "png", dataset="imported")[0])
    assert meta["license"] == "other"
    assert meta["source_datasets"] == ["original"]
    assert "not known to synthgen (an imported model)" in body
