"""A train job then a generate job through REST, on Postgres, Redis, an S3 server and a
real Celery worker."""

from __future__ import annotations

import csv
import hashlib
import io
import zipfile

import httpx
import numpy as np
import pytest
from PIL import Image

from tests import croissant_cache
from tests.integration.conftest import TINY_DDPM, TenantClient

pytestmark = pytest.mark.integration
DOCUMENTS = ("README.md", "croissant.json")  # written beside every generated set


@pytest.fixture(scope="module")
def trained_model(worker, make_tenant_module) -> tuple[TenantClient, dict]:
    tenant = make_tenant_module()
    job = tenant.submit(
        {
            "kind": "train",
            "engine": "ddpm",
            "dataset": "shapes",
            "model_name": "shapes-ddpm",
            "config": TINY_DDPM,
        }
    )
    assert job["status"] == "queued"
    done = tenant.wait(job["id"])
    assert done["status"] == "succeeded", done["error"]
    return tenant, done


def test_train_job_succeeds_with_timestamps_and_progress(trained_model):
    _, job = trained_model
    assert job["started_at"] and job["completed_at"]
    assert job["created_at"] <= job["started_at"] <= job["completed_at"]
    assert job["progress"]["fraction"] == 1.0
    assert "loss" in job["progress"]["metrics"]


def test_train_job_registers_a_model_version(trained_model):
    tenant, job = trained_model
    versions = tenant.get("/v1/models/shapes-ddpm/versions").json()
    assert [v["version"] for v in versions] == [1]
    assert versions[0]["engine"] == "ddpm"
    assert versions[0]["dataset"] == "shapes:train"
    assert versions[0]["train_job_id"] == job["id"]
    assert job["result"]["model_version"]["id"] == versions[0]["id"]
    models = tenant.get("/v1/models").json()
    assert [m["name"] for m in models] == ["shapes-ddpm"]


def test_train_artifacts_are_downloadable(trained_model):
    tenant, job = trained_model
    items = tenant.get(f"/v1/jobs/{job['id']}/artifacts").json()["items"]
    names = {a["name"] for a in items}
    assert {"model/model.safetensors", "model/config.json", "grid.png"} <= names
    grid = next(a for a in items if a["name"] == "grid.png")
    body = httpx.get(grid["url"]).content  # presigned: no API key needed
    assert len(body) == grid["size"]
    assert Image.open(io.BytesIO(body)).format == "PNG"


def test_generate_npz_returns_requested_images(trained_model):
    tenant, _ = trained_model
    job = tenant.submit(
        {
            "kind": "generate",
            "model": "shapes-ddpm",
            "count": 70,
            "labels": [0, 2],
            "seed": 3,
            "config": {"sampler": "ddim", "steps": 4},
            "output_format": "npz",
        }
    )
    done = tenant.wait(job["id"])
    assert done["status"] == "succeeded", done["error"]
    items = {a["name"]: a for a in tenant.get(f"/v1/jobs/{job['id']}/artifacts").json()["items"]}
    assert set(items) == {"images.npz", "manifest.csv", "grid.png", *DOCUMENTS}
    assert done["result"]["images_at"] == "images.npz"
    data = np.load(io.BytesIO(httpx.get(items["images.npz"]["url"]).content))
    assert data["images"].shape == (70, 3, 8, 8)
    assert data["images"].dtype == np.uint8
    assert data["labels"].tolist() == [0, 2] * 35


def test_generate_png_and_imagefolder_layouts(trained_model):
    tenant, _ = trained_model
    png = tenant.submit(
        {
            "kind": "generate",
            "model": "shapes-ddpm",
            "count": 5,
            "config": {"steps": 2},
            "output_format": "png",
        }
    )
    folder = tenant.submit(
        {
            "kind": "generate",
            "model": "shapes-ddpm:1",
            "count": 6,
            "config": {"steps": 2},
            "output_format": "imagefolder",
        }
    )
    assert tenant.wait(png["id"])["status"] == "succeeded"
    assert tenant.wait(folder["id"])["status"] == "succeeded"

    items = {a["name"]: a for a in tenant.get(f"/v1/jobs/{png['id']}/artifacts").json()["items"]}
    pngs = {f"images/{i:06d}.png" for i in range(5)}
    assert pngs | {"labels.csv", "manifest.csv", "grid.png", *DOCUMENTS} == set(items)
    rows = list(csv.DictReader(io.StringIO(httpx.get(items["labels.csv"]["url"]).text)))
    assert [r["file"] for r in rows] == [f"images/{i:06d}.png" for i in range(5)]

    items = {a["name"]: a for a in tenant.get(f"/v1/jobs/{folder['id']}/artifacts").json()["items"]}
    archive = zipfile.ZipFile(io.BytesIO(httpx.get(items["images.zip"]["url"]).content))
    names = archive.namelist()
    assert len(names) == 6
    assert all(name.count("/") == 1 and name.endswith(".png") for name in names)
    assert len({name.split("/")[0] for name in names}) > 1  # classes drawn evenly
    assert set(items) == {"images.zip", "manifest.csv", "grid.png", *DOCUMENTS}
    manifest = list(csv.DictReader(io.StringIO(httpx.get(items["manifest.csv"]["url"]).text)))
    assert sorted(r["member"] for r in manifest) == sorted(names)


def _all_artifacts(tenant: TenantClient, job_id: str, limit: int) -> list[dict]:
    items: list[dict] = []
    cursor = None
    while True:
        params = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        page = tenant.get(f"/v1/jobs/{job_id}/artifacts", params=params).json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def test_generate_png_beyond_one_shard_lists_every_image_in_result_and_manifest(
    trained_model, settings
):
    tenant, _ = trained_model
    count = 2 * settings.shard_size + 22  # three shards, the last one short
    job = tenant.submit(
        {
            "kind": "generate",
            "model": "shapes-ddpm",
            "count": count,
            "config": {"steps": 2},
            "output_format": "png",
        }
    )
    done = tenant.wait(job["id"])
    assert done["status"] == "succeeded", done["error"]
    result = done["result"]
    assert result["count"] == count
    assert result["output_format"] == "png"
    assert result["images_at"] == "images/*.png"
    assert result["manifest"] == "manifest.csv"
    assert result["files"] == sorted(["grid.png", "labels.csv", "manifest.csv", *DOCUMENTS])
    assert result["artifacts"] == count + 5

    listed = _all_artifacts(tenant, job["id"], limit=40)
    names = [a["name"] for a in listed]
    assert len(names) == len(set(names)) == result["artifacts"]
    pngs = {f"images/{i:06d}.png" for i in range(count)}
    assert set(names) == pngs | set(result["files"])

    urls = {a["name"]: a["url"] for a in listed}
    manifest = list(csv.DictReader(io.StringIO(httpx.get(urls["manifest.csv"]).text)))
    assert [r["file"] for r in manifest] == sorted(pngs)
    k = len(result["class_names"])
    assert [int(r["label"]) for r in manifest] == [i % k for i in range(count)]
    with httpx.Client() as http:
        for row in manifest:
            data = http.get(urls[row["file"]]).content
            assert (hashlib.sha256(data).hexdigest(), len(data)) == (
                row["sha256"],
                int(row["size"]),
            ), row["file"]


def test_same_seed_generates_identical_images(trained_model):
    tenant, _ = trained_model
    body = {
        "kind": "generate",
        "model": "shapes-ddpm",
        "count": 4,
        "seed": 11,
        "config": {"steps": 3},
        "output_format": "npz",
    }
    first, second = tenant.submit(body), tenant.submit(body)
    arrays = []
    for job in (first, second):
        assert tenant.wait(job["id"])["status"] == "succeeded"
        items = {
            a["name"]: a for a in tenant.get(f"/v1/jobs/{job['id']}/artifacts").json()["items"]
        }
        arrays.append(np.load(io.BytesIO(httpx.get(items["images.npz"]["url"]).content))["images"])
    np.testing.assert_array_equal(arrays[0], arrays[1])


def test_a_failed_job_says_why_without_a_traceback(worker, make_tenant):
    tenant = make_tenant()
    job = tenant.submit(
        {
            "kind": "train",
            "engine": "ddpm",
            "dataset": "cifar10",
            "model_name": "no-data",
            "config": TINY_DDPM,
        }
    )
    done = tenant.wait(job["id"])
    assert done["status"] == "failed"
    assert done["error"]["type"] == "DatasetError"
    assert "cifar-10-batches-bin" in done["error"]["message"]
    assert "Traceback" not in done["error"]["message"]
    assert tenant.get("/v1/models").json() == []


def _download(tenant: TenantClient, job_id: str, folder) -> dict[str, dict]:
    """Every artifact into ``folder`` under its name, as `synthgen jobs artifacts` does."""
    items = {a["name"]: a for a in tenant.get(f"/v1/jobs/{job_id}/artifacts").json()["items"]}
    for name, item in items.items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        response = httpx.get(item["url"])
        assert len(response.content) == item["size"], (name, response.headers)
        target.write_bytes(response.content)
    return items


def test_generate_parquet_and_webdataset_load_in_their_libraries(
    trained_model, tmp_path, monkeypatch
):
    import datasets
    import mlcroissant as mlc
    import webdataset as wds
    import yaml

    croissant_cache.isolate(monkeypatch, tmp_path / "croissant-extract")
    tenant, _ = trained_model
    body = {"kind": "generate", "model": "shapes-ddpm", "count": 9, "config": {"steps": 2}}
    parquet = tenant.submit({**body, "output_format": "parquet", "seed": 4})
    shards = tenant.submit({**body, "output_format": "webdataset", "seed": 4})
    done = tenant.wait(parquet["id"])
    assert done["status"] == "succeeded", done["error"]
    assert done["result"]["images_at"] == "data/train-00000.parquet"
    items = _download(tenant, parquet["id"], tmp_path / "p")
    assert set(items) == {"data/train-00000.parquet", "manifest.csv", "grid.png", *DOCUMENTS}
    assert items["data/train-00000.parquet"]["content_type"] == "application/vnd.apache.parquet"
    ds = datasets.load_dataset(str(tmp_path / "p"), split="train", cache_dir=str(tmp_path / "c"))
    version = done["result"]["model_version"]["id"]
    assert len(ds) == 9 and set(ds["model_version"]) == {version}
    assert ds.features["label"].names == done["result"]["class_names"]
    front = yaml.safe_load((tmp_path / "p" / "README.md").read_text().split("---\n")[1])
    assert front["source_datasets"] == ["shapes"] and front["size_categories"] == ["n<1K"]
    record = mlc.Dataset(jsonld=str(tmp_path / "p" / "croissant.json"))
    assert len(list(record.records("images"))) == 9

    done = tenant.wait(shards["id"])
    assert done["status"] == "succeeded", done["error"]
    assert done["result"]["images_at"] == "webdataset/train-000000.tar"
    _download(tenant, shards["id"], tmp_path / "w")
    pipeline = wds.WebDataset(
        str(tmp_path / "w" / done["result"]["images_at"]), shardshuffle=False
    ).decode("pil")
    samples = list(pipeline.to_tuple("png", "cls", "json"))
    assert [meta["index"] for _, _, meta in samples] == list(range(9))
    # The same request in another format: the same images, in the same order.
    np.testing.assert_array_equal(
        np.stack([np.asarray(image) for image, _, _ in samples]),
        np.stack([np.asarray(row["image"].convert("RGB")) for row in ds]),
    )
