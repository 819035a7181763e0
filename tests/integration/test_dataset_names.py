"""Datasets by name: unique per tenant, usable wherever a job takes a dataset, resolved
at submit to the id the job then stores (so a name used again later never changes what
a stored job reads)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from core.datasets.orm import Dataset
from core.db import session_scope
from core.jobs.orm import Job
from tests import archives
from tests.integration.conftest import TINY_DDPM
from tests.integration.uploads import upload_dataset

pytestmark = pytest.mark.integration


def _count(settings, table) -> int:
    with session_scope(settings.database_url) as session:
        return int(session.scalar(select(func.count()).select_from(table)))


def test_a_train_job_names_its_dataset_and_stores_the_id(worker, tenant):
    dataset = upload_dataset(tenant, archives.npz_bytes(4), "npz", name="signs100")
    assert dataset["status"] == "ready", dataset["error"]
    body = {"kind": "train", "engine": "ddpm", "dataset": "signs100", "model_name": "named"}
    job = tenant.submit({**body, "config": TINY_DDPM})
    assert job["request"]["dataset"] == f"{dataset['id']}:train"
    done = tenant.wait(job["id"])
    assert done["status"] == "succeeded", done["error"]
    version = tenant.get("/v1/models/named/versions").json()[0]
    assert version["dataset"] == f"{dataset['id']}:train"
    # The validation job says which dataset it validated, by name.
    validation = tenant.get(f"/v1/jobs/{dataset['validation_job']}").json()
    assert validation["request"]["name"] == "signs100"


def test_an_evaluate_reference_by_name_is_resolved_at_submit(worker, tenant):
    dataset = upload_dataset(tenant, archives.npz_bytes(4), "npz", name="ref-set")
    body = {"kind": "evaluate", "model": "none-such", "reference": "ref-set:test"}
    # The reference resolves (else a 404 naming reference); the model is what is missing.
    response = tenant.post("/v1/jobs", json=body)
    assert response.status_code == 404, response.text
    assert "none-such" in response.json()["detail"]
    assert dataset["status"] == "ready"


def test_a_second_dataset_with_a_taken_name_is_409_naming_name(tenant, settings):
    first = tenant.post("/v1/datasets", json={"name": "twice", "format": "zip"})
    assert first.status_code == 201, first.text
    before = _count(settings, Dataset)
    again = tenant.post("/v1/datasets", json={"name": "twice", "format": "zip"})
    assert again.status_code == 409, again.text
    assert again.json()["invalid_params"][0]["name"] == "name"
    assert first.json()["id"] in again.json()["detail"]
    assert _count(settings, Dataset) == before
    # A deleted dataset's name is free again.
    assert tenant.request("DELETE", f"/v1/datasets/{first.json()['id']}").status_code == 204
    assert tenant.post("/v1/datasets", json={"name": "twice", "format": "zip"}).status_code == 201


def test_another_tenants_name_is_not_found(make_tenant, settings):
    owner, other = make_tenant(), make_tenant()
    assert owner.post("/v1/datasets", json={"name": "mine", "format": "zip"}).status_code == 201
    assert other.post("/v1/datasets", json={"name": "mine", "format": "zip"}).status_code == 201
    before = _count(settings, Job)
    body = {"kind": "train", "engine": "ddpm", "dataset": "theirs", "model_name": "m"}
    response = other.post("/v1/jobs", json=body)
    assert response.status_code == 404, response.text
    assert response.json()["invalid_params"][0]["name"] == "dataset"
    assert "no dataset named 'theirs'" in response.json()["detail"]
    assert _count(settings, Job) == before


@pytest.mark.parametrize("name", ["digits", "ds_mine", "a:b", "a/b"])
def test_names_that_would_be_read_as_something_else_are_422(tenant, name):
    response = tenant.post("/v1/datasets", json={"name": name, "format": "zip"})
    assert response.status_code == 422, response.text
    assert response.json()["invalid_params"][0]["name"] == "name"
