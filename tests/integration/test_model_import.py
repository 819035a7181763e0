"""Model import and txt2img through the API: a tiny text-to-image pipeline built here is
uploaded as an archive (or read from an allowed s3:// prefix of the test S3 server),
validated, checksummed and registered; a txt2img job makes a labelled ImageFolder."""

from __future__ import annotations

import csv
import hashlib
import io
import zipfile
from pathlib import Path

import boto3
import httpx
import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from tests import archives
from tests.integration.conftest import TINY_DDPM, TenantClient
from tests.integration.uploads import SETTLED_IMPORT, import_archive, poll, upload_dataset
from tests.pipelines import save_tiny_pipeline

pytestmark = pytest.mark.integration


def directory_archive(directory: Path, root: str = "") -> bytes:
    files = {
        f"{root}{p.relative_to(directory).as_posix()}": p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }
    return archives.tar_bytes(files)


@pytest.fixture(scope="module")
def pipeline_dir(tmp_path_factory) -> Path:
    return save_tiny_pipeline(tmp_path_factory.mktemp("sd") / "tiny-sd")


@pytest.fixture(scope="module")
def imported(worker, make_tenant_module, pipeline_dir) -> tuple[TenantClient, dict]:
    tenant = make_tenant_module()
    done = import_archive(
        tenant, directory_archive(pipeline_dir, "tiny-sd/"), "tiny-sd", "diffusers"
    )
    return tenant, done


def artifacts(tenant: TenantClient, job_id: str) -> dict[str, dict]:
    return {a["name"]: a for a in tenant.get(f"/v1/jobs/{job_id}/artifacts").json()["items"]}


def test_uploaded_pipeline_is_registered_with_a_checksum_per_file(imported, pipeline_dir):
    tenant, done = imported
    assert done["status"] == "registered", done["error"]
    version = done["model_version"]
    assert (version["name"], version["version"]) == ("tiny-sd", 1)
    listed = tenant.get("/v1/models/tiny-sd/versions").json()[0]
    assert listed["engine"] == "diffusers"
    assert listed["spec"]["pipeline_class"] == "StableDiffusionPipeline"
    lineage = tenant.get("/v1/models/tiny-sd/versions/1/lineage").json()
    assert lineage["created_by"] == "import"
    expected = {
        p.relative_to(pipeline_dir).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in pipeline_dir.rglob("*")
        if p.is_file()
    }
    assert lineage["imported"]["checksums"] == expected


def test_txt2img_makes_a_labelled_imagefolder_with_prompts_per_image(imported):
    tenant, _ = imported
    job = tenant.submit(
        {
            "kind": "txt2img",
            "model": "tiny-sd",
            "prompts": {"stop sign": ["a red {class}"], "yield sign": []},
            "templates": ["a photo of the {class}"],
            "negative_prompt": "blurry",
            "count_per_class": 3,
            "steps": 2,
            "guidance_scale": 3.0,
            "scheduler": "euler",
            "seed": 5,
            "batch_size": 4,
        }
    )
    done = tenant.wait(job["id"])
    assert done["status"] == "succeeded", done["error"]
    assert done["result"]["class_names"] == ["stop sign", "yield sign"]
    assert done["result"]["image_shape"] == [3, 16, 16]
    assert done["result"]["scheduler"] == "EulerDiscreteScheduler"
    items = artifacts(tenant, job["id"])
    with zipfile.ZipFile(io.BytesIO(httpx.get(items["images.zip"]["url"]).content)) as archive:
        folders = sorted(name.split("/")[0] for name in archive.namelist())
    assert folders == ["stop sign"] * 3 + ["yield sign"] * 3
    rows = list(csv.DictReader(io.StringIO(httpx.get(items["prompts.csv"]["url"]).text)))
    assert [r["prompt"] for r in rows] == [
        "a red stop sign",
        "a photo of the stop sign",
        "a red stop sign",
        "a photo of the yield sign",
        "a photo of the yield sign",
        "a photo of the yield sign",
    ]
    assert {r["negative_prompt"] for r in rows} == {"blurry"}
    assert [int(r["seed"]) for r in rows] == list(range(5, 11))
    card = httpx.get(items["README.md"]["url"]).text
    assert f"txt2img job `{job['id']}`" in card and "| 1 | yield sign | 3 |" in card
    assert "license: other" in card  # an imported pipeline's training data is unknown
    croissant = httpx.get(items["croissant.json"]["url"]).json()
    assert croissant["conformsTo"] == "http://mlcommons.org/croissant/1.0"
    lineage = tenant.get("/v1/models/tiny-sd/versions/1/lineage").json()
    assert job["id"] in [u["job_id"] for u in lineage["used_by"]]


def test_width_the_autoencoder_cannot_take_is_refused(imported):
    tenant, _ = imported
    body = {"kind": "txt2img", "model": "tiny-sd", "prompts": {"a": ["a"]}, "count_per_class": 1}
    response = tenant.post("/v1/jobs", json={**body, "width": 15})
    assert response.status_code == 422
    assert response.json()["invalid_params"][0]["name"] == "width"


def test_generate_on_a_pipeline_is_refused_pointing_to_txt2img(imported):
    tenant, _ = imported
    response = tenant.post("/v1/jobs", json={"kind": "generate", "model": "tiny-sd", "count": 2})
    assert response.status_code == 422
    assert "txt2img" in response.json()["detail"]


def test_preview_of_a_pipeline_is_refused_naming_ref(imported):
    # A pipeline draws from prompts and a preview has none: 422 before any row is written.
    tenant, _ = imported
    response = tenant.post("/v1/models/tiny-sd/preview", json={})
    assert response.status_code == 422
    assert response.json()["invalid_params"][0]["name"] == "ref"
    assert "txt2img" in response.json()["detail"]


def test_pipeline_with_pickled_weights_is_refused_and_nothing_registered(worker, tenant, tmp_path):
    pickled = save_tiny_pipeline(tmp_path / "pickled", safe_serialization=False)
    done = import_archive(tenant, directory_archive(pickled), "pickled", "diffusers")
    assert done["status"] == "invalid"
    assert done["error"]["type"] == "BadModel"
    assert "pickled weights" in done["error"]["message"]
    assert tenant.get("/v1/models").json() == []


def test_pipeline_under_an_allowed_s3_prefix_is_imported(
    worker, settings, make_tenant, pipeline_dir
):
    client = boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint_url,
        aws_access_key_id=settings.aws_access_key_id,
        aws_secret_access_key=settings.aws_secret_access_key,
        region_name="us-east-1",
    )
    client.create_bucket(Bucket="pretrained-models")
    for path in pipeline_dir.rglob("*"):
        if path.is_file():
            key = f"sd/tiny/{path.relative_to(pipeline_dir).as_posix()}"
            client.put_object(Bucket="pretrained-models", Key=key, Body=path.read_bytes())
    allowing = settings.model_copy(update={"import_allowed_urls": ["s3://pretrained-models/sd/"]})
    with TestClient(create_app(allowing)) as app_client:
        made = make_tenant()
        tenant = TenantClient(app_client, made.key, made.name)
        refused = tenant.post(
            "/v1/imports",
            json={"model_name": "x", "format": "diffusers", "source": "s3://other-bucket/sd/"},
        )
        assert refused.status_code == 422
        assert refused.json()["invalid_params"][0]["name"] == "source"
        created = tenant.post(
            "/v1/imports",
            json={"model_name": "s3-sd", "format": "diffusers",
                  "source": "s3://pretrained-models/sd/tiny/"},
        )  # fmt: skip
        assert created.status_code == 201, created.text
        done = poll(tenant, f"/v1/imports/{created.json()['id']}", SETTLED_IMPORT)
    assert done["status"] == "registered", done["error"]
    assert done["source"] == "s3://pretrained-models/sd/tiny/"


def test_synthgen_checkpoint_import_round_trip(worker, tenant):
    train = tenant.submit(
        {"kind": "train", "engine": "ddpm", "dataset": "shapes", "model_name": "src",
         "config": TINY_DDPM}
    )  # fmt: skip
    assert tenant.wait(train["id"])["status"] == "succeeded"
    items = artifacts(tenant, train["id"])
    files = {
        name.removeprefix("model/"): httpx.get(item["url"]).content
        for name, item in items.items()
        if name.startswith("model/")
    }
    done = import_archive(tenant, archives.zip_bytes(files), "copied", "synthgen")
    assert done["status"] == "registered", done["error"]
    version = tenant.get("/v1/models/copied/versions").json()[0]
    assert version["engine"] == "ddpm" and version["spec"]["num_classes"] == 5
    gen = tenant.submit({"kind": "generate", "model": "copied", "count": 5, "config": {"steps": 2}})
    assert tenant.wait(gen["id"])["status"] == "succeeded"


def test_prompts_to_dataset_to_utility_against_uploaded_real_images(imported, worker):
    """The road-sign workflow: real photos uploaded, a labelled set made from prompts,
    a classifier trained on it and tested on the real test split, all through REST
    (the small CNN here: "resnet18" is the same request, minutes longer on a CPU)."""
    tenant, _ = imported
    real = {
        f"{name}/{i:02d}.png": archives.png(30 + 150 * c + i, (16, 16), mode="RGB")
        for c, name in enumerate(("stop sign", "yield sign"))
        for i in range(10)
    }
    dataset = upload_dataset(tenant, archives.zip_bytes(real), "zip", name="road signs")
    assert dataset["status"] == "ready", dataset["error"]
    made = tenant.submit(
        {
            "kind": "txt2img",
            "model": "tiny-sd",
            "prompts": {"yield sign": [], "stop sign": []},  # not the dataset's order
            "templates": ["a photo of a {class}"],
            "count_per_class": 6,
            "steps": 2,
        }
    )
    assert tenant.wait(made["id"])["status"] == "succeeded"
    job = tenant.submit(
        {
            "kind": "evaluate",
            "source_job": made["id"],
            "reference": f"{dataset['id']}:test",
            "metrics": ["classifier_utility"],
            "config": {
                "features": "classifier",
                "classifier_epochs": 1,
                "subset_sizes": [2],
            },
        }
    )
    done = tenant.wait(job["id"], timeout_s=600)
    assert done["status"] == "succeeded", done["error"]
    settings = {row["setting"] for row in done["result"]["summary"]["classifier_utility"]["rows"]}
    assert "TSTR" in settings


def test_txt2img_against_a_reference_without_its_classes_or_colour_is_refused(imported, worker):
    tenant, _ = imported
    rgb = archives.imagefolder_files(5, mode="RGB")
    dataset = upload_dataset(tenant, archives.zip_bytes(rgb), "zip")
    made = tenant.submit(
        {"kind": "txt2img", "model": "tiny-sd", "prompts": {"stop sign": ["a {class}"]},
         "count_per_class": 10, "steps": 1}
    )  # fmt: skip
    assert tenant.wait(made["id"])["status"] == "succeeded"
    response = tenant.post(
        "/v1/jobs",
        json={"kind": "evaluate", "source_job": made["id"], "reference": f"{dataset['id']}:test",
              "metrics": ["classifier_utility"], "config": {"features": "classifier"}},
    )  # fmt: skip
    assert response.status_code == 422
    assert "'stop sign'" in response.json()["detail"]
    gray = upload_dataset(tenant, archives.zip_bytes(archives.imagefolder_files(5)), "zip")
    response = tenant.post(
        "/v1/jobs",
        json={"kind": "evaluate", "source_job": made["id"], "reference": f"{gray['id']}:test",
              "metrics": ["classifier_utility"], "config": {"features": "classifier"}},
    )  # fmt: skip
    assert response.status_code == 422
    assert "grayscale" in response.json()["detail"]
