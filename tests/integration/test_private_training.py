"""A differentially private train job end to end: ε in its result, in its version's
metrics and lineage, and in the result of every generate job made from it; a non-private
version says "privacy": null; submit refuses a private run from a non-private parent of
the same data."""

from __future__ import annotations

import pytest

from tests.integration.conftest import TINY_DDPM

pytestmark = pytest.mark.integration

PRIVACY = {"epsilon": 8.0, "max_grad_norm": 1.0}


@pytest.fixture(scope="module")
def trained(worker, make_tenant_module):
    tenant = make_tenant_module()
    jobs = {}
    for name, config in (("open", TINY_DDPM), ("private", {**TINY_DDPM, "privacy": PRIVACY})):
        job = tenant.submit(
            {"kind": "train", "engine": "ddpm", "dataset": "shapes", "model_name": name,
             "config": config}
        )  # fmt: skip
        done = tenant.wait(job["id"])
        assert done["status"] == "succeeded", done["error"]
        jobs[name] = done
    return tenant, jobs


def _generate(tenant, model: str) -> dict:
    job = tenant.submit({"kind": "generate", "model": model, "count": 2, "config": {"steps": 2}})
    done = tenant.wait(job["id"])
    assert done["status"] == "succeeded", done["error"]
    return done["result"]


def test_a_private_job_reports_its_epsilon_in_result_version_lineage_and_generate(trained):
    tenant, jobs = trained
    privacy = jobs["private"]["result"]["privacy"]
    assert 0 < privacy["epsilon"] <= PRIVACY["epsilon"] == privacy["target_epsilon"]
    assert privacy["steps"] == TINY_DDPM["max_steps"] and privacy["accountant"] == "prv"
    assert privacy["delta"] < privacy["sample_rate"] / privacy["expected_batch_size"]  # 1/n
    version = tenant.get("/v1/models/private/versions").json()[0]
    assert version["metrics"]["training"]["epsilon"] == privacy["epsilon"]
    assert version["config"]["privacy"]["delta"] == privacy["delta"]
    lineage = tenant.get("/v1/models/private/versions/1/lineage").json()
    assert lineage["privacy"] == privacy
    assert _generate(tenant, "private")["privacy"] == privacy


def test_a_non_private_version_says_privacy_null_everywhere(trained):
    tenant, jobs = trained
    assert jobs["open"]["result"]["privacy"] is None
    assert tenant.get("/v1/models/open/versions/1/lineage").json()["privacy"] is None
    assert _generate(tenant, "open")["privacy"] is None


def test_a_private_run_from_a_non_private_parent_of_the_same_data_is_refused(trained):
    tenant, _ = trained
    response = tenant.post(
        "/v1/jobs",
        json={"kind": "train", "engine": "ddpm", "dataset": "shapes", "model_name": "x",
              "init_from": "open:1", "config": {"max_steps": 1, "privacy": PRIVACY}},
    )  # fmt: skip
    assert response.status_code == 422
    assert response.json()["invalid_params"][0]["name"] == "init_from"


def test_a_private_version_lists_its_record_and_its_audit_checks_the_bound(trained):
    tenant, jobs = trained
    privacy = jobs["private"]["result"]["privacy"]
    assert tenant.get("/v1/models/private/versions").json()[0]["privacy"] == privacy
    job = tenant.submit(
        {
            "kind": "evaluate",
            "model": "private",
            "reference": "shapes:test",
            "count": 20,
            "metrics": ["membership_inference"],
            "config": {"features": "classifier", "sample_config": {"steps": 2}},
        }
    )
    done = tenant.wait(job["id"], timeout_s=600)
    assert done["status"] == "succeeded", done["error"]
    dp = done["result"]["summary"]["privacy"]["differential_privacy"]
    assert dp["epsilon"] == privacy["epsilon"]
    assert dp["tpr_bound_at_1pct_fpr"] > 0.01
    assert dp["attacks"] and all("bound" in row for row in dp["attacks"])
