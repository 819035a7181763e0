"""Dataset uploads through the API, the S3 server and the worker's validation job: real
archives, each with its documented outcome; a refused one leaves nothing behind."""

from __future__ import annotations

import io
import zipfile

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.main import create_app
from core import storage as storage_mod
from core.db import session_scope
from core.jobs.orm import Job
from tests import archives
from tests.integration.conftest import TenantClient
from tests.integration.uploads import SETTLED_DATASET, poll, send, upload_dataset

pytestmark = pytest.mark.integration


def stored(settings, dataset_id: str) -> list[str]:
    return [o.key for o in storage_mod.from_settings(settings).list(f"datasets/{dataset_id}/")]


def test_imagefolder_zip_becomes_ready_with_classes_counts_and_a_stored_split(
    worker, tenant, settings
):
    data = archives.zip_bytes(archives.imagefolder_files(5))
    dataset = upload_dataset(tenant, data, "zip", name="signs", test_fraction=0.2)
    assert dataset["status"] == "ready", dataset["error"]
    assert dataset["classes"] == ["circle", "square"]
    assert dataset["counts"] == {"circle": 5, "square": 5}
    assert dataset["image_shape"] == [1, 8, 8]
    assert dataset["split"]["train"] == {"circle": 4, "square": 4}
    assert dataset["split"]["test"] == {"circle": 1, "square": 1}
    assert dataset["size"] == len(data) and len(dataset["sha256"]) == 64
    preview = httpx.get(dataset["urls"]["preview"])
    assert preview.content[:8] == b"\x89PNG\r\n\x1a\n"
    store = storage_mod.from_settings(settings)
    data_npz = np.load(io.BytesIO(store.get_bytes(f"datasets/{dataset['id']}/data.npz")))
    assert int(data_npz["split"].sum()) == 2  # one test image per class


def test_gzipped_tar_is_accepted(worker, tenant):
    dataset = upload_dataset(tenant, archives.tar_bytes(archives.imagefolder_files(3)), "tar")
    assert dataset["status"] == "ready", dataset["error"]
    assert dataset["num_images"] == 6


def test_npz_with_classes_is_accepted(worker, tenant):
    dataset = upload_dataset(tenant, archives.npz_bytes(4), "npz")
    assert dataset["status"] == "ready", dataset["error"]
    assert dataset["counts"] == {"circle": 4, "square": 4}


@pytest.mark.parametrize(
    ("case", "data", "error_type", "named"),
    [
        ("zip-slip", archives.zip_slip(), "UnsafePath", "../../evil.png"),
        ("zip bomb", archives.zip_bomb(40 * 2**20), "ArchiveTooLarge", "zip bomb"),
        ("truncated png", archives.truncated_png_zip(), "CorruptImages", "circle/001.png"),
        ("30000x30000 header", archives.huge_header_zip(), "ImageTooLarge", "square/huge.png"),
    ],
)
def test_hostile_archive_is_invalid_with_the_reason_and_leaves_nothing(
    worker, tenant, settings, case, data, error_type, named
):
    dataset = upload_dataset(tenant, data, "zip", name=case)
    assert dataset["status"] == "invalid"
    assert dataset["error"]["type"] == error_type
    assert named in dataset["error"]["message"]
    assert dataset["classes"] is None and dataset["sha256"] is None
    assert stored(settings, dataset["id"]) == []  # nor the upload itself
    job = tenant.get(f"/v1/jobs/{dataset['validation_job']}").json()
    assert job["status"] == "failed" and job["error"]["type"] == error_type


def test_truncated_png_is_listed_and_left_out_with_skip_corrupt(worker, tenant):
    dataset = upload_dataset(tenant, archives.truncated_png_zip(), "zip", skip_corrupt=True)
    assert dataset["status"] == "ready", dataset["error"]
    assert dataset["corrupt"][0]["file"] == "circle/001.png"
    assert dataset["counts"] == {"circle": 2, "square": 3}


def test_complete_before_the_upload_is_a_409_that_changes_nothing(tenant, settings):
    created = tenant.post("/v1/datasets", json={"name": "x", "format": "zip"}).json()
    response = tenant.post(f"/v1/datasets/{created['id']}/complete")
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert tenant.get(f"/v1/datasets/{created['id']}").json()["status"] == "awaiting_upload"
    with session_scope(settings.database_url) as session:
        assert (
            session.scalar(
                select(func.count())
                .select_from(Job)
                .where(
                    Job.kind == "validate_dataset",
                    Job.request["dataset"].as_string() == created["id"],
                )
            )
            == 0
        )


def test_declared_size_over_the_limit_is_refused_naming_size(tenant):
    response = tenant.post("/v1/datasets", json={"name": "big", "format": "zip", "size": 10**15})
    assert response.status_code == 422
    assert response.json()["invalid_params"][0]["name"] == "size"
    assert tenant.get("/v1/datasets").json()["items"] == []


def test_a_tenant_never_sees_another_tenants_dataset(worker, make_tenant):
    owner, other = make_tenant(), make_tenant()
    dataset = upload_dataset(owner, archives.zip_bytes(archives.imagefolder_files(2)), "zip")
    path = f"/v1/datasets/{dataset['id']}"
    assert other.get(path).status_code == 404
    assert other.post(f"{path}/complete").status_code == 404
    assert other.request("DELETE", path).status_code == 404
    assert other.get("/v1/datasets").json()["items"] == []
    response = other.post(
        "/v1/jobs",
        json={"kind": "train", "engine": "ddpm", "dataset": dataset["id"], "model_name": "m"},
    )
    assert response.status_code == 404
    assert response.json()["invalid_params"][0]["name"] == "dataset"


def test_delete_removes_the_dataset_and_its_files(worker, tenant, settings):
    dataset = upload_dataset(tenant, archives.zip_bytes(archives.imagefolder_files(2)), "zip")
    assert stored(settings, dataset["id"])
    assert tenant.request("DELETE", f"/v1/datasets/{dataset['id']}").status_code == 204
    assert tenant.get(f"/v1/datasets/{dataset['id']}").status_code == 404
    assert stored(settings, dataset["id"]) == []


def test_job_on_a_dataset_not_yet_ready_is_refused(tenant):
    created = tenant.post("/v1/datasets", json={"name": "x", "format": "zip"}).json()
    response = tenant.post(
        "/v1/jobs",
        json={"kind": "train", "engine": "ddpm", "dataset": created["id"], "model_name": "m"},
    )
    assert response.status_code == 422
    assert "awaiting_upload" in response.json()["detail"]


def test_reference_without_a_test_split_is_refused(worker, tenant):
    dataset = upload_dataset(
        tenant, archives.zip_bytes(archives.imagefolder_files(2)), "zip", test_fraction=0
    )
    response = tenant.post(
        "/v1/jobs",
        json={"kind": "evaluate", "source_job": "x", "reference": f"{dataset['id']}:test"},
    )
    assert response.status_code == 422
    assert "no images in its test split" in response.json()["detail"]


def test_large_declared_file_goes_up_in_multipart_parts(worker, settings, make_tenant):
    part = 5 * 2**20
    small = settings.model_copy(
        update={"upload_multipart_threshold": part, "upload_part_bytes": part}
    )
    files = {**archives.imagefolder_files(2), "circle/big.png": archives.noise_png(1400)}
    data = archives.zip_bytes(files, compression=zipfile.ZIP_STORED)
    assert part < len(data) < 2 * part
    with TestClient(create_app(small)) as client:
        made = make_tenant()
        tenant = TenantClient(client, made.key, made.name)
        created = tenant.post(
            "/v1/datasets", json={"name": "parts", "format": "zip", "size": len(data)}
        ).json()
        assert created["upload"]["method"] == "multipart"
        assert [p["part_number"] for p in created["upload"]["parts"]] == [1, 2]
        send(created["upload"], data)
        assert tenant.post(f"/v1/datasets/{created['id']}/complete").status_code == 200
        dataset = poll(tenant, f"/v1/datasets/{created['id']}", SETTLED_DATASET)
    assert dataset["status"] == "ready", dataset["error"]
    assert dataset["size"] == len(data)
    assert dataset["counts"] == {"circle": 3, "square": 2} and dataset["resized"]
