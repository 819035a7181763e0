"""A train job's curves answer at ``GET /v1/jobs/{id}/curves`` and, the same, at the
route's first name ``/metrics`` (kept for clients written against it, deprecated in the
OpenAPI document); the SDK reads the new one."""

from __future__ import annotations

import httpx
import pytest
from synthgen_client.sdk import Client

from core.curves import service as curves
from core.db import session_scope
from tests import embedded_api

UNKNOWN = "00000000-0000-0000-0000-000000000000"
TRAIN = {"kind": "train", "engine": "ddpm", "dataset": "shapes", "model_name": "c"}


@pytest.fixture()
def api(tmp_path):
    settings = embedded_api.settings(tmp_path)
    with embedded_api.client(settings) as client:
        job = client.post("/v1/jobs", json=TRAIN)
        assert job.status_code == 201, job.text
        points = [{"step": s, "loss": 1.0 / s, "lr": 0.001} for s in range(1, 8)]
        points[4].update(eval_fd=12.5, best_step=5)  # a held-out evaluation at step 5
        with session_scope(settings.database_url) as session:
            curves.record(session=session, job_id=job.json()["id"], points=points)
        yield client, job.json()["id"], settings


@pytest.mark.parametrize("params", [{}, {"every": 2}, {"limit": 3}, {"after": 3, "limit": 2}])
def test_curves_and_the_old_metrics_path_answer_the_same(api, params):
    client, job_id, _ = api
    new = client.get(f"/v1/jobs/{job_id}/curves", params=params)
    old = client.get(f"/v1/jobs/{job_id}/metrics", params=params)
    assert new.status_code == old.status_code == 200
    assert new.json() == old.json()
    assert new.json()["items"], new.json()


def test_curves_give_every_nth_step_and_follow_the_cursor(api):
    client, job_id, _ = api
    page = client.get(f"/v1/jobs/{job_id}/curves", params={"every": 2}).json()
    # Step 5 is odd but holds an evaluation: thinning keeps the scores' only points.
    assert [p["step"] for p in page["items"]] == [2, 4, 5, 6] and page["next_cursor"] is None
    assert page["items"][2]["eval_fd"] == 12.5
    first = client.get(f"/v1/jobs/{job_id}/curves", params={"limit": 4}).json()
    assert first["next_cursor"] == 4
    rest = client.get(f"/v1/jobs/{job_id}/curves", params={"after": 4}).json()
    assert [p["step"] for p in rest["items"]] == [5, 6, 7]


def test_both_paths_are_not_found_for_an_unknown_job(api):
    client, _, _ = api
    for path in ("curves", "metrics"):
        assert client.get(f"/v1/jobs/{UNKNOWN}/{path}").status_code == 404


def test_openapi_marks_only_the_old_path_deprecated(api):
    client, _, _ = api
    paths = client.get("/openapi.json").json()["paths"]
    new, old = paths["/v1/jobs/{job_id}/curves"]["get"], paths["/v1/jobs/{job_id}/metrics"]["get"]
    assert not new.get("deprecated") and old["deprecated"] is True
    assert new["operationId"] == "job_curves" and old["operationId"] == "job_metrics"
    assert new["responses"]["200"] == old["responses"]["200"]


def test_the_sdk_reads_the_curves_route_and_keeps_its_old_method_name(api):
    client, job_id, _ = api
    asked: list[str] = []

    def forward(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        answer = client.request(request.method, str(request.url), headers=dict(request.headers))
        return httpx.Response(answer.status_code, content=answer.content, headers=answer.headers)

    sdk = Client("http://testserver", client.headers["Authorization"].split()[1])
    sdk.http = httpx.Client(
        base_url="http://testserver",
        headers=sdk.http.headers,
        transport=httpx.MockTransport(forward),
    )
    steps = [int(p["step"]) for p in sdk.jobs.curves(job_id, every=3)]
    assert steps == [3, 5, 6]  # 5: the evaluation
    assert [int(p["step"]) for p in sdk.jobs.metrics(job_id, every=3)] == steps
    assert asked and all(path == f"/v1/jobs/{job_id}/curves" for path in asked)


def test_thinning_for_plots_keeps_the_last_point_and_every_evaluation():
    points = [{"step": float(s), "loss": 1.0} for s in range(1, 1001)]
    for s in (333, 667):  # evaluations off the stride
        points[s - 1].update(eval_fd=1.0, best_step=float(s))
    kept = curves.thinned(points, most=100)
    steps = [p["step"] for p in kept]
    assert steps[:3] == [1.0, 11.0, 21.0] and steps[-1] == 1000.0
    assert {333.0, 667.0} <= set(steps) and len(kept) == 103
    assert steps == sorted(steps)
