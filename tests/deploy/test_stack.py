"""The compose stack, proven on a real Docker engine: both images built from their
Dockerfiles, docker-compose.yml up unchanged (CPU profile), used from the host as a user
would (tests/deploy/conftest.py starts it; test_stack_faults.py breaks it)."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.deploy.engine import docker
from tests.deploy.stack import PROMETHEUS, SERVICES, WORKERS, Stack, _ready
from tests.tools import venv_tool

pytestmark = pytest.mark.timeout(1800)

TRAIN = {
    "kind": "train",
    "engine": "ddpm",
    "dataset": "shapes",
    "model_name": "stack",
    # Milliseconds a step: the faults' runs need hundreds of steps to stop in the middle of.
    "config": {
        "max_steps": 8,
        "batch_size": 8,
        "image_size": 8,
        "base_channels": 8,
        "num_train_timesteps": 10,
    },  # fmt: skip
}


def submit(client: httpx.Client, body: dict, key: str | None = None) -> str:
    """POST a job as a careful client does: a 503 is retried after its Retry-After with the
    same Idempotency-Key. After a database restart each API process answers its first
    statement on a dead pooled connection with one 503 (core/db.py: no pre-ping on the hot
    path), so the first submit after test_stack_faults' Postgres restart may meet one."""
    headers = {"Idempotency-Key": key or uuid.uuid4().hex}
    for _ in range(3):
        response = client.post("/v1/jobs", json=body, headers=headers)
        if response.status_code != 503:
            break
        time.sleep(int(response.headers["Retry-After"]))
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_both_images_stand_on_one_base_and_run_as_a_non_root_user(stack: Stack):
    layers = {
        tag: json.loads(docker("image", "inspect", "-f", "{{json .RootFS.Layers}}", tag).stdout)
        for tag in ("synthgen-api:latest", "synthgen-worker:latest", "python:3.12-slim-bookworm")
    }
    base = layers["python:3.12-slim-bookworm"]
    assert layers["synthgen-api:latest"][: len(base)] == base
    assert layers["synthgen-worker:latest"][: len(base)] == base
    probe = "import os, torch, worker.tasks; print(os.getuid(), torch.__version__)"
    done = docker("run", "--rm", "synthgen-worker:latest", "python", "-c", probe)
    uid, version = done.stdout.split()
    assert uid == "10001" and version.startswith("2.13.0")


def test_every_service_is_healthy_and_the_one_shots_exited_zero(stack: Stack):
    states = stack.states()
    assert set(states) == set(SERVICES)
    assert all(_ready(name, row) for name, row in states.items()), states


def test_a_user_trains_generates_evaluates_previews_and_downloads_from_the_host(
    stack: Stack, tmp_path: Path
):
    with stack.client() as client:
        trained = stack.wait_job(submit(client, TRAIN), {"succeeded", "failed"})
        assert trained["status"] == "succeeded", trained["error"]
        generated = stack.wait_job(
            submit(client, {"kind": "generate", "model": "stack", "count": 12, "seed": 1,
                            "config": {"sampler": "ddim", "steps": 3}, "output_format": "png"}),
            {"succeeded", "failed"},
        )  # fmt: skip
        assert generated["status"] == "succeeded", generated["error"]
        evaluated = stack.wait_job(
            submit(client, {"kind": "evaluate", "model": "stack", "reference": "shapes:test",
                            "count": 40, "metrics": ["fid", "class_coverage"],
                            "config": {"features": "classifier", "seeds": [0],
                                       "subset_sizes": [10], "classifier_epochs": 1,
                                       "sample_config": {"steps": 2}}}),
            {"succeeded", "failed"},
        )  # fmt: skip
        assert evaluated["status"] == "succeeded", evaluated["error"]
        preview = client.post(
            "/v1/models/stack/preview", json={"count": 10, "config": {"steps": 2}}
        )
        assert preview.status_code == 200 and preview.content.startswith(b"\x89PNG"), preview.text

        # Every artifact of every job, through its URL, from the host, no /etc/hosts edit.
        fetched = 0
        for job in (trained, generated, evaluated):
            items = client.get(f"/v1/jobs/{job['id']}/artifacts").json()["items"]
            assert items, job["kind"]
            for item in items:
                assert urlsplit(item["url"]).netloc == "localhost:8333", item["url"]
                got = httpx.get(item["url"], timeout=30)
                assert got.status_code == 200, (item["name"], got.text[:200])
                assert len(got.content) == item["size"], item["name"]
                fetched += 1
        assert fetched >= 12 + 3

    # The CLI's verified download, as README shows it, from the host.
    env = {**os.environ, "SYNTHGEN_API_URL": "http://localhost:8000", "SYNTHGEN_API_KEY": stack.key}
    done = subprocess.run(
        [venv_tool("synthgen"), "jobs", "artifacts", generated["id"], "--download", str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(list((tmp_path / "images").glob("*.png"))) == 12
    # The set's documents travel with it (issue 27): a dataset card and a Croissant record.
    assert (tmp_path / "README.md").read_text().startswith("---")
    assert (tmp_path / "croissant.json").exists()


def test_api_and_every_worker_serve_metrics_and_prometheus_scrapes_them_all(stack: Stack):
    text = httpx.get("http://localhost:8000/metrics", timeout=10).text
    assert "synthgen_http_requests_total" in text
    for service in WORKERS:
        served = stack.compose(
            "exec", "-T", service, "python", "-c",
            "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:9100/metrics').read().decode())",
        ).stdout  # fmt: skip
        assert "# TYPE" in served, service

    def targets() -> list[dict]:
        return httpx.get(f"{PROMETHEUS}/api/v1/targets", timeout=10).json()["data"]["activeTargets"]

    deadline = time.monotonic() + 90  # a scrape every 15 s
    while time.monotonic() < deadline:
        active = targets()
        if len(active) >= 5 and all(t["health"] == "up" for t in active):
            break
        time.sleep(3)
    jobs = sorted((t["labels"]["job"], t["labels"].get("service", "")) for t in active)
    assert all(t["health"] == "up" for t in active), active
    assert ("synthgen-api", "") in jobs
    assert {s for j, s in jobs if j == "synthgen-worker"} == set(WORKERS)
    groups = httpx.get(f"{PROMETHEUS}/api/v1/rules", timeout=10).json()["data"]["groups"]
    assert sum(len(g["rules"]) for g in groups) >= 5


def test_down_then_up_keeps_jobs_models_keys_and_files(stack: Stack):
    with stack.client() as client:
        jobs = client.get("/v1/jobs", params={"limit": 100}).json()["items"]
    before = {j["id"]: j["status"] for j in jobs}
    generate = next(j for j in jobs if j["kind"] == "generate")
    assert before
    stack.compose("down", timeout=300)  # without -v: the named volumes stay
    assert stack.compose("ps", "-a", "-q").stdout.strip() == ""
    stack.timings["down_up_s"] = stack.up()
    with stack.client() as client:  # the same key still works
        jobs = client.get("/v1/jobs", params={"limit": 100}).json()["items"]
        after = {j["id"]: j["status"] for j in jobs}
        assert after == before
        assert "stack" in {m["name"] for m in client.get("/v1/models").json()}
        items = client.get(f"/v1/jobs/{generate['id']}/artifacts").json()["items"]
    png = next(i for i in items if i["name"].endswith(".png"))
    assert httpx.get(png["url"], timeout=30).content.startswith(b"\x89PNG")
