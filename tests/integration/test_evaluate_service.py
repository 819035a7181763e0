"""Evaluate jobs through REST: both report files, metrics attached to the model version."""

from __future__ import annotations

import json

import httpx
import pytest
from sqlalchemy import func, select

from core.db import session_scope
from core.jobs.orm import Job
from tests import archives
from tests.integration.conftest import TINY_DDPM
from tests.integration.uploads import import_archive, upload_dataset

pytestmark = pytest.mark.integration

FAST = {
    "features": "classifier",  # no Inception weights on this server
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
    assert labels == {
        "FD (shapes classifier)",
        "KID (shapes classifier)",
        "Precision (shapes classifier)",
        "Recall (shapes classifier)",
    }
    assert report["feature_space"] == "classifier"
    summary = done["result"]["summary"]
    assert summary["features"] == "classifier"
    assert "FD, not FID" in summary["feature_space"]
    assert set(summary["metrics"]) == labels
    assert "× 10³" in summary["metrics"]["KID (shapes classifier)"]["unit"]
    html = httpx.get(items["report.html"]["url"]).text
    assert "<img" in html and "data:image/png;base64," in html
    body = html.split("<body", 1)[1]
    assert "src='http" not in body and 'src="http' not in body  # self-contained

    version = tenant.get("/v1/models/ev/versions").json()[0]
    attached = version["metrics"]["evaluation shapes:test"]
    assert attached["job_id"] == job["id"]
    assert attached["metrics"]


@pytest.fixture(scope="module")
def generated(model):
    """A finished generate job of 40 images in the imagefolder layout."""
    gen = model.submit(
        {
            "kind": "generate",
            "model": "ev",
            "count": 40,
            "config": {"steps": 2},
            "output_format": "imagefolder",
        }
    )
    assert model.wait(gen["id"])["status"] == "succeeded"
    return gen["id"]


def _from_source(source_job: str, **fields) -> dict:
    return {
        "kind": "evaluate",
        "source_job": source_job,
        "reference": "shapes:test",
        "metrics": ["fid", "class_coverage"],
        "config": {"features": "classifier"},
        **fields,
    }


def _refused(tenant, settings, body: dict) -> dict:
    before = _job_count(settings)
    response = tenant.post("/v1/jobs", json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert _job_count(settings) == before
    return response.json()


def _job_count(settings) -> int:
    with session_scope(settings.database_url) as session:
        return int(session.scalar(select(func.count()).select_from(Job)))


def test_evaluate_from_a_generate_job_uses_all_its_images_by_default(model, generated):
    job = model.submit(_from_source(generated))
    done = model.wait(job["id"], timeout_s=600)
    assert done["status"] == "succeeded", done["error"]
    assert done["result"]["summary"]["synthetic_count"] == 40


def test_evaluate_from_a_generate_job_uses_exactly_count_images(model, generated):
    job = model.submit(_from_source(generated, count=25))
    done = model.wait(job["id"], timeout_s=600)
    assert done["status"] == "succeeded", done["error"]
    assert done["result"]["summary"]["synthetic_count"] == 25
    coverage = json.loads(
        httpx.get(
            {
                a["name"]: a["url"]
                for a in model.get(f"/v1/jobs/{job['id']}/artifacts").json()["items"]
            }["report.json"]
        ).content
    )["class_coverage"]
    assert sum(row["samples"] for row in coverage["per_class"]) == 25


def test_count_beyond_the_source_jobs_images_is_422_naming_count(model, generated, settings):
    problem = _refused(model, settings, _from_source(generated, count=41))
    assert problem["invalid_params"][0]["name"] == "count"
    assert "has 40 images" in problem["detail"]


def test_seed_with_a_source_job_is_422_naming_it(model, generated, settings):
    problem = _refused(model, settings, _from_source(generated, seed=3))
    assert problem["invalid_params"][0]["name"] == "seed"


def test_sampling_options_with_a_source_job_are_422_naming_them(model, generated, settings):
    config = {"features": "classifier", "sample_config": {"steps": 2}}
    problem = _refused(model, settings, _from_source(generated, config=config))
    assert problem["invalid_params"][0]["name"] == "config.sample_config"


@pytest.mark.parametrize("metrics", [["fid"], ["kid", "class_coverage"], ["precision_recall"]])
def test_distances_in_inception_features_without_weights_are_422_naming_metrics(
    model, settings, metrics
):
    body = {
        "kind": "evaluate",
        "model": "ev",
        "reference": "shapes:test",
        "metrics": metrics,
        "config": {"features": "inception"},
    }
    problem = _refused(model, settings, body)
    assert problem["invalid_params"][0]["name"] == "metrics"
    reason = problem["invalid_params"][0]["reason"]
    assert "SYNTHGEN_INCEPTION_WEIGHTS" in reason
    assert 'config.features: "classifier"' in reason


def test_evaluate_by_default_runs_in_the_classifier_features_and_says_so(model, generated):
    """No Inception weights on this server: features "auto" (left out) is the classifier,
    in the stored request, the summary and both reports."""
    job = model.submit(_from_source(generated, config={"classifier_epochs": 1}))
    assert job["request"]["config"]["features"] == "classifier"
    assert job["request"]["config"]["features_auto"] is True
    done = model.wait(job["id"], timeout_s=600)
    assert done["status"] == "succeeded", done["error"]
    summary = done["result"]["summary"]
    assert summary["features"] == "classifier"
    assert 'features "auto"' in summary["features_note"]
    assert "no Inception-v3 weights" in summary["features_note"]
    urls = {
        a["name"]: a["url"] for a in model.get(f"/v1/jobs/{job['id']}/artifacts").json()["items"]
    }
    assert (
        json.loads(httpx.get(urls["report.json"]).content)["features_note"]
        == summary["features_note"]
    )
    assert "features &quot;auto&quot; (the default) chose" in httpx.get(urls["report.html"]).text


def test_source_job_that_is_not_a_finished_generate_job_is_422(model):
    tenant = model
    train = tenant.get("/v1/jobs", params={"kind": "train"}).json()["items"][0]
    response = tenant.post(
        "/v1/jobs", json={"kind": "evaluate", "source_job": train["id"], "reference": "shapes:test"}
    )
    assert response.status_code == 422
    assert response.json()["invalid_params"][0]["name"] == "source_job"


def _report(tenant, job_id: str) -> tuple[dict, str]:
    urls = {a["name"]: a["url"] for a in tenant.get(f"/v1/jobs/{job_id}/artifacts").json()["items"]}
    return json.loads(httpx.get(urls["report.json"]).content), httpx.get(urls["report.html"]).text


def test_a_model_trained_here_is_audited_for_privacy_by_default(model):
    tenant = model
    job = tenant.submit(
        {
            "kind": "evaluate",
            "model": "ev",
            "reference": "shapes:test",
            "count": 40,
            "config": {"features": "classifier", "sample_config": {"steps": 2}},
        }
    )
    assert job["request"]["metrics"] == [
        "fid", "kid", "precision_recall", "memorization", "membership_inference"
    ]  # fmt: skip
    done = tenant.wait(job["id"], timeout_s=600)
    assert done["status"] == "succeeded", done["error"]
    report, html = _report(tenant, job["id"])
    audit = report["privacy"]
    assert audit["training_set"] == "shapes:train" and audit["held_out"] == "shapes:test"
    assert audit["counts"] == {"synthetic": 40, "train": 2000, "held_out": 500}
    assert set(audit["memorization"]) == {"pixels", "features"}
    for space in audit["memorization"].values():
        figure = space["figures"]["copy_fraction"]
        assert figure["value"]["low"] <= figure["value"]["value"] <= figure["value"]["high"]
        assert figure["floor"]["low"] <= figure["floor"]["value"] <= figure["floor"]["high"]
    assert len(audit["gallery"]) == 16
    attacks = {a["name"]: a for a in audit["membership_inference"]}
    assert any(name.startswith("white-box") for name in attacks)
    assert all(a["members"] == a["nonmembers"] == 500 for a in attacks.values())
    assert "only differential privacy bounds" in audit["what_it_proves"].lower()
    assert html.count("<figure><img alt='' src='data:image/png;base64,") >= 16
    assert "The most copy-like synthetic images" in html

    summary = done["result"]["summary"]["privacy"]
    assert summary["audited"] and "copy_fraction" in summary
    version = tenant.get("/v1/models/ev/versions").json()[0]
    assert version["metrics"]["evaluation shapes:test"]["privacy"]["audited"] is True
    assert version["privacy"] is None  # not trained with differential privacy


def test_the_images_keep_best_held_out_of_training_are_not_audited_as_members(model):
    """A model scored on a slice of its own training split (shapes has no split between
    train and the test split evaluate judges on) never trained on that slice: the audit
    counts the other images as its members, and says so."""
    tenant = model
    train = tenant.submit(
        {
            "kind": "train",
            "engine": "ddpm",
            "dataset": "shapes",
            "model_name": "ev-sliced",
            "config": {**TINY_DDPM, "eval_every": 3},
        }
    )
    trained = tenant.wait(train["id"])
    assert trained["status"] == "succeeded", trained["error"]
    held_out = trained["result"]["selection"]["held_out"]
    assert held_out["source"] == "slice" and held_out["of"] == 2000
    job = tenant.submit(
        {
            "kind": "evaluate",
            "model": "ev-sliced",
            "reference": "shapes:test",
            "count": 20,
            "metrics": ["memorization"],
            "config": {"features": "classifier", "sample_config": {"steps": 2}},
        }
    )
    done = tenant.wait(job["id"], timeout_s=600)
    assert done["status"] == "succeeded", done["error"]
    report, html = _report(tenant, job["id"])
    audit = report["privacy"]
    assert audit["counts"]["train"] == 2000 - held_out["count"]
    note = f"{held_out['count']} of the 2000 images in shapes:train were held out of training"
    assert any(n.startswith(note) for n in audit["notes"])
    assert note in html


def test_privacy_audit_left_out_says_why_in_the_report(model):
    job = model.submit(
        {
            "kind": "evaluate",
            "model": "ev",
            "reference": "shapes:test",
            "count": 20,
            "metrics": ["class_coverage"],
            "config": {"features": "classifier", "sample_config": {"steps": 2}},
        }
    )
    done = model.wait(job["id"], timeout_s=600)
    assert done["status"] == "succeeded", done["error"]
    report, html = _report(model, job["id"])
    assert report["privacy"] is None
    assert report["privacy_note"].startswith("Not asked")
    assert done["result"]["summary"]["privacy"] == {
        "audited": False,
        "note": report["privacy_note"],
    }
    assert "Not asked" in html


def test_train_reference_that_contradicts_the_lineage_is_422_naming_it(model, settings):
    body = {
        "kind": "evaluate",
        "model": "ev",
        "reference": "shapes:test",
        "config": {"features": "classifier", "train_reference": "digits:train"},
    }
    problem = _refused(model, settings, body)
    assert problem["invalid_params"][0]["name"] == "config.train_reference"
    assert "trained on shapes:train" in problem["detail"]


@pytest.fixture(scope="module")
def imported_copy(model):
    """The ``ev`` model's files imported as ``ev-copy``: the registry no longer knows what
    it was trained on."""
    train = model.get("/v1/jobs", params={"kind": "train"}).json()["items"][0]
    urls = {
        a["name"]: a["url"] for a in model.get(f"/v1/jobs/{train['id']}/artifacts").json()["items"]
    }
    files = {
        name.removeprefix("model/"): httpx.get(url).content
        for name, url in urls.items()
        if name.startswith("model/")
    }
    done = import_archive(model, archives.zip_bytes(files), "ev-copy", "synthgen")
    assert done["status"] == "registered", done["error"]
    return "ev-copy"


def test_privacy_metrics_of_an_imported_model_need_train_reference(model, imported_copy, settings):
    body = {
        "kind": "evaluate",
        "model": imported_copy,
        "reference": "shapes:test",
        "metrics": ["memorization"],
        "config": {"features": "classifier"},
    }
    problem = _refused(model, settings, body)
    assert problem["invalid_params"][0]["name"] == "metrics"
    assert "config.train_reference" in problem["detail"]


def test_an_imported_models_default_leaves_the_audit_out_and_says_so(model, imported_copy):
    job = model.submit(
        {
            "kind": "evaluate",
            "model": imported_copy,
            "reference": "shapes:test",
            "count": 20,
            "config": {"features": "classifier", "sample_config": {"steps": 2}},
        }
    )
    assert job["request"]["metrics"] == ["fid", "kid", "precision_recall"]
    done = model.wait(job["id"], timeout_s=600)
    assert done["status"] == "succeeded", done["error"]
    note = done["result"]["summary"]["privacy"]["note"]
    assert note.startswith("Not run") and "config.train_reference" in note


def test_an_imported_model_is_audited_against_the_train_reference_it_names(model, imported_copy):
    job = model.submit(
        {
            "kind": "evaluate",
            "model": imported_copy,
            "reference": "shapes:test",
            "count": 20,
            "metrics": ["memorization"],
            "config": {
                "features": "classifier",
                "sample_config": {"steps": 2},
                "train_reference": "shapes:train",
            },
        }
    )
    done = model.wait(job["id"], timeout_s=600)
    assert done["status"] == "succeeded", done["error"]
    report, _ = _report(model, job["id"])
    assert report["privacy"]["training_set"] == "shapes:train"
    assert report["privacy"]["membership_inference"] is None


def test_an_upload_without_a_held_out_split_is_not_audited_and_says_why(model, settings):
    """A model trained on an upload made with test_fraction 0: nothing to hold out."""
    tenant = model
    images = {
        f"{c}/{i:02d}.png": archives.png(40 + 90 * c + i, (8, 8), mode="RGB")
        for c in range(2)
        for i in range(6)
    }
    dataset = upload_dataset(
        tenant, archives.zip_bytes(images), "zip", name="all train", test_fraction=0
    )
    assert dataset["status"] == "ready", dataset["error"]
    train = tenant.submit(
        {"kind": "train", "engine": "ddpm", "dataset": dataset["id"], "model_name": "no-holdout",
         "config": TINY_DDPM}
    )  # fmt: skip
    assert tenant.wait(train["id"])["status"] == "succeeded"
    body = {
        "kind": "evaluate",
        "model": "no-holdout",
        "reference": "shapes:test",
        "count": 10,
        "config": {"features": "classifier", "sample_config": {"steps": 2}},
    }
    problem = _refused(tenant, settings, {**body, "metrics": ["memorization"]})
    assert problem["invalid_params"][0]["name"] == "metrics"
    assert "no images in its test split" in problem["detail"]
    job = tenant.submit({**body, "metrics": None})
    assert job["request"]["metrics"] == ["fid", "kid", "precision_recall"]
    done = tenant.wait(job["id"], timeout_s=600)
    assert done["status"] == "succeeded", done["error"]
    assert "no images in its test split" in done["result"]["summary"]["privacy"]["note"]
