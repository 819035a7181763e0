"""Evaluate jobs through REST: both report files, metrics attached to the model version."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.integration.conftest import TINY_DDPM

pytestmark = pytest.mark.integration

FAST = {
    "seeds": [0, 1, 2],
    "subset_sizes": [5],
    "classifier_epochs": 1,
    "sample_config": {"steps": 2},
}


@pytest.fixture(scope="module")
def model(worker, make_tenant_module):
    tenant = make_tenant_module()
    job = tenant.submit(
        {
            "kind": "train",
            "engine": "ddpm",
            "dataset": "shapes",
            "model_name": "ev",
            "config": TINY_DDPM,
        }
    )
    assert tenant.wait(job["id"])["status"] == "succeeded"
    return tenant


def test_evaluate_job_writes_reports_and_attaches_metrics(model):
    tenant = model
    job = tenant.submit(
        {
            "kind": "evaluate",
            "model": "ev",
            "reference": "shapes:test",
            "count": 60,
            "metrics": ["fid", "kid", "precision_recall", "class_coverage", "classifier_utility"],
            "config": FAST,
        }
    )
    done = tenant.wait(job["id"], timeout_s=600)
    assert done["status"] == "succeeded", done["error"]
    items = {a["name"]: a for a in tenant.get(f"/v1/jobs/{job['id']}/artifacts").json()["items"]}
    assert set(items) == {"report.json", "report.html"}
    report = json.loads(httpx.get(items["report.json"]["url"]).content)
    labels = {m["label"] for m in report["metrics"]}
    assert any(label.startswith("FD (shapes classifier") for label in labels), labels
    assert all("Inception" not in label for label in labels)  # no weights here: skipped
    html = httpx.get(items["report.html"]["url"]).text
    assert "<img" in html and "data:image/png;base64," in html
    body = html.split("<body", 1)[1]
    assert "src='http" not in body and 'src="http' not in body  # self-contained

    version = tenant.get("/v1/models/ev/versions").json()[0]
    attached = version["metrics"]["evaluation shapes:test"]
    assert attached["job_id"] == job["id"]
    assert attached["metrics"]


def test_evaluate_from_a_finished_generate_job(model):
    tenant = model
    gen = tenant.submit(
        {
            "kind": "generate",
            "model": "ev",
            "count": 40,
            "config": {"steps": 2},
            "output_format": "imagefolder",
        }
    )
    assert tenant.wait(gen["id"])["status"] == "succeeded"
    job = tenant.submit(
        {
            "kind": "evaluate",
            "source_job": gen["id"],
            "reference": "shapes:test",
            "metrics": ["fid", "class_coverage"],
        }
    )
    done = tenant.wait(job["id"], timeout_s=600)
    assert done["status"] == "succeeded", done["error"]
    assert done["result"]["summary"]["synthetic_count"] == 40


def test_source_job_that_is_not_a_finished_generate_job_is_422(model):
    tenant = model
    train = tenant.get("/v1/jobs", params={"kind": "train"}).json()["items"][0]
    response = tenant.post(
        "/v1/jobs", json={"kind": "evaluate", "source_job": train["id"], "reference": "shapes:test"}
    )
    assert response.status_code == 422
    assert response.json()["invalid_params"][0]["name"] == "source_job"
