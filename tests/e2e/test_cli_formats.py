"""Parquet and WebDataset sets made with the real `synthgen` CLI against the embedded
stack, downloaded with it, and loaded by the libraries users train with (issue 27)."""

from __future__ import annotations

import json

import numpy as np

from tests import croissant_cache
from tests.e2e.test_cli import TINY_TRAIN, cli, submit


def test_cli_generates_parquet_and_webdataset_sets_the_libraries_load(
    shared_stack, tmp_path, monkeypatch
):
    import datasets
    import mlcroissant as mlc
    import webdataset as wds

    croissant_cache.isolate(monkeypatch, tmp_path / "croissant-extract")
    train_id = submit(shared_stack, {**TINY_TRAIN, "model_name": "formats"})
    assert cli("jobs", "wait", train_id, "-q", stack=shared_stack).returncode == 0
    body = {"kind": "generate", "model": "formats", "count": 6, "config": {"steps": 2}}
    results = {}
    for fmt in ("parquet", "webdataset"):
        job_id = submit(shared_stack, {**body, "output_format": fmt})
        done = cli("--json", "jobs", "wait", job_id, "-q", stack=shared_stack)
        assert done.returncode == 0, done.stdout + done.stderr
        results[fmt] = json.loads(done.stdout)["result"]
        saved = cli("jobs", "artifacts", job_id, "--download", str(tmp_path / fmt), "-q",
                    stack=shared_stack)  # fmt: skip
        assert saved.returncode == 0, saved.stderr
        assert (tmp_path / fmt / "README.md").is_file()
        record = mlc.Dataset(jsonld=str(tmp_path / fmt / "croissant.json"))
        assert len(list(record.records("images"))) == 6

    ds = datasets.load_dataset(
        str(tmp_path / "parquet"), split="train", cache_dir=str(tmp_path / "cache")
    )
    assert ds.features["label"].names == results["parquet"]["class_names"]
    pattern = str(tmp_path / "webdataset" / results["webdataset"]["images_at"])
    samples = list(wds.WebDataset(pattern, shardshuffle=False).decode("pil").to_tuple("png", "cls"))
    assert [label for _, label in samples] == ds["label"]
    np.testing.assert_array_equal(
        np.asarray(samples[0][0]), np.asarray(ds[0]["image"].convert(samples[0][0].mode))
    )
