"""Model aliases (set, move, remove, who and when, ``name@alias`` at submit) and a train
job's per-step curves (GET /v1/jobs/{id}/metrics, metrics.jsonl, TensorBoard files)."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.integration.conftest import TINY_DDPM

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("worker")]
TRAIN = {"kind": "train", "engine": "ddpm", "dataset": "shapes", "model_name": "al",
         "config": TINY_DDPM}  # fmt: skip


@pytest.fixture(scope="module")
def owner(make_tenant_module):
    tenant = make_tenant_module()
    jobs = [tenant.submit(TRAIN) for _ in range(2)]
    assert [tenant.wait(j["id"])["status"] for j in jobs] == ["succeeded", "succeeded"]
    tenant.train_job = jobs[0]["id"]
    return tenant


def put_alias(tenant, alias, version, name="al"):
    return tenant.request("PUT", f"/v1/models/{name}/aliases/{alias}", json={"version": version})


def test_an_alias_is_set_then_moved_and_each_move_says_who_and_when(owner):
    assert put_alias(owner, "prod", 1).json()["version"] == 1
    moved = put_alias(owner, "prod", 2).json()
    assert moved["version"] == 2 and moved["updated_by"] == owner.key[:10]
    listing = owner.get("/v1/models/al/aliases").json()
    assert [(a["alias"], a["version"]) for a in listing["items"]] == [("prod", 2)]
    moves = [(m["from_version"], m["to_version"], m["moved_by"]) for m in listing["moves"]]
    assert moves[:2] == [(1, 2, owner.key[:10]), (None, 1, owner.key[:10])]
    assert all(m["moved_at"] for m in listing["moves"])


def test_aliases_show_on_the_model_and_on_the_version(owner):
    put_alias(owner, "staging", 1)
    model = next(m for m in owner.get("/v1/models").json() if m["name"] == "al")
    assert model["aliases"]["staging"] == 1
    versions = {v["version"]: v for v in owner.get("/v1/models/al/versions").json()}
    assert "staging" in versions[1]["aliases"]


def test_a_generate_job_for_name_at_alias_uses_the_aliased_version(owner):
    put_alias(owner, "pinned", 1)
    job = owner.submit({"kind": "generate", "model": "al@pinned", "count": 2,
                        "config": {"steps": 2}})  # fmt: skip
    done = owner.wait(job["id"])
    assert done["result"]["model_version"]["version"] == 1


def test_removing_an_alias_is_recorded_and_the_name_stops_resolving(owner):
    put_alias(owner, "gone", 2)
    assert owner.request("DELETE", "/v1/models/al/aliases/gone").status_code == 204
    assert owner.request("DELETE", "/v1/models/al/aliases/gone").status_code == 404
    moves = owner.get("/v1/models/al/aliases").json()["moves"]
    assert (moves[0]["alias"], moves[0]["to_version"]) == ("gone", None)
    response = owner.post("/v1/jobs", json={"kind": "generate", "model": "al@gone", "count": 1})
    assert response.status_code == 404


def test_an_alias_to_a_missing_version_or_a_bad_name_is_refused(owner):
    assert put_alias(owner, "prod", 99).status_code == 404
    assert put_alias(owner, "bad name!", 1).status_code == 422
    assert owner.request("PUT", "/v1/models/al/aliases/x", json={"version": 0}).status_code == 422


def test_another_tenant_cannot_see_or_move_the_aliases(owner, make_tenant_module):
    stranger = make_tenant_module()
    assert put_alias(stranger, "prod", 1).status_code == 404
    assert stranger.get("/v1/models/al/aliases").status_code == 404


def test_metrics_give_every_nth_step_with_losses_lr_grad_norm_and_step_time(owner):
    page = owner.get(f"/v1/jobs/{owner.train_job}/metrics", params={"every": 2}).json()
    assert [p["step"] for p in page["items"]] == [2, 4, 6]
    assert {"loss", "lr", "grad_norm", "step_time_s"} <= set(page["items"][0])
    assert page["next_cursor"] is None


def test_metrics_pages_follow_the_cursor(owner):
    first = owner.get(f"/v1/jobs/{owner.train_job}/metrics", params={"limit": 4}).json()
    assert [p["step"] for p in first["items"]] == [1, 2, 3, 4] and first["next_cursor"] == 4
    rest = owner.get(f"/v1/jobs/{owner.train_job}/metrics", params={"after": 4}).json()
    assert [p["step"] for p in rest["items"]] == [5, 6]


def test_metrics_of_another_tenants_job_are_not_found(owner, make_tenant_module):
    assert make_tenant_module().get(f"/v1/jobs/{owner.train_job}/metrics").status_code == 404


def test_metrics_jsonl_and_tensorboard_files_are_artifacts(owner):
    items = {
        a["name"]: a for a in owner.get(f"/v1/jobs/{owner.train_job}/artifacts").json()["items"]
    }
    lines = httpx.get(items["metrics.jsonl"]["url"]).text.splitlines()
    assert [json.loads(line)["step"] for line in lines] == [1, 2, 3, 4, 5, 6]
    assert any(name.startswith("tensorboard/events.out.tfevents") for name in items)
