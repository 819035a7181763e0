"""Faults on the real deployment (docker-compose.yml on the private engine): a worker
killed as the OOM killer would, a worker restarted by compose, Postgres restarted under
submissions, the S3 server stopped mid-generate. Runs after test_stack.py, on its stack."""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid

import httpx
import pytest

from tests.deploy.stack import Stack
from tests.deploy.test_stack import TRAIN, submit

pytestmark = pytest.mark.timeout(1800)
GENERATIVE = "worker-gpu-on-cpu"
TERMINAL = {"succeeded", "failed", "canceled"}


def long_train(name: str, **config) -> dict:
    # No keep-best scoring: these runs are about faults, and its evaluations (six and a
    # guidance sweep in 3,000 steps) made the resumed run outlast its wait on a busy host.
    config = {
        **TRAIN["config"],
        "max_steps": 3000,
        "checkpoint_every": 100,
        "eval_every": 0,
        **config,
    }
    return {**TRAIN, "model_name": name, "config": config}


def test_a_worker_killed_like_the_oom_killer_restarts_and_its_job_resumes(stack: Stack):
    """SIGKILL to the container's main process from the host, as the kernel's OOM killer
    sends it (`docker kill` would count as a manual stop and not be restarted)."""
    restarts = int(stack.inspect(GENERATIVE, "{{.RestartCount}}"))
    with stack.client() as client:
        job_id = submit(client, long_train("oom"))
    assert stack.wait_step(job_id, 250)["status"] == "running"  # past two checkpoints
    os.kill(int(stack.inspect(GENERATIVE, "{{.State.Pid}}")), signal.SIGKILL)

    deadline = time.monotonic() + 120
    while int(stack.inspect(GENERATIVE, "{{.RestartCount}}")) == restarts:
        assert time.monotonic() < deadline, "the restart policy did not bring the worker back"
        time.sleep(1)
    # The reconciler hands the orphaned run back once its heartbeat is older than the
    # timeout (120 s by default); the restarted worker resumes it from its checkpoint.
    done = stack.wait_job(job_id, TERMINAL, timeout_s=900)
    assert done["status"] == "succeeded", done["error"]
    assert (done["attempts"], done["preemptions"]) == (2, 0)
    resumed = done["result"]["resumed_from_step"]
    assert resumed >= 200 and resumed % 100 == 0


def test_compose_restart_of_the_worker_checkpoints_and_requeues_its_job(stack: Stack):
    """`docker compose restart`: SIGTERM, the warm shutdown as preemption."""
    with stack.client() as client:
        job_id = submit(client, long_train("restarted", checkpoint_every=10_000))
    assert stack.wait_step(job_id, 200)["status"] == "running"
    stack.compose("restart", GENERATIVE, timeout=120)
    done = stack.wait_job(job_id, TERMINAL, timeout_s=600)
    assert done["status"] == "succeeded", done["error"]
    assert (done["attempts"], done["preemptions"]) == (2, 1)
    assert done["result"]["resumed_from_step"] >= 200  # the checkpoint SIGTERM wrote


def test_postgres_restarted_under_submissions_answers_503_and_loses_nothing(stack: Stack):
    body = {**TRAIN, "model_name": "pg", "config": {**TRAIN["config"], "max_steps": 1}}
    answers: list[tuple[str, httpx.Response]] = []
    stop = threading.Event()

    def submitter() -> None:
        with stack.client() as client:
            while not stop.is_set():
                key = uuid.uuid4().hex
                headers = {"Idempotency-Key": key}
                try:
                    answers.append((key, client.post("/v1/jobs", json=body, headers=headers)))
                except httpx.TransportError:
                    pass  # the API answered nothing: the client retries; nothing to check
                time.sleep(0.2)

    thread = threading.Thread(target=submitter)
    thread.start()
    try:
        time.sleep(2)
        stack.compose("restart", "postgres", timeout=120)
        time.sleep(8)  # submissions after it came back
    finally:
        stop.set()
        thread.join(timeout=60)

    codes = [r.status_code for _, r in answers]
    assert 201 in codes and 503 in codes, codes
    assert set(codes) <= {201, 503}, [r.text for _, r in answers if r.status_code not in {201, 503}]
    for _, refused in ((k, r) for k, r in answers if r.status_code == 503):
        assert int(refused.headers["Retry-After"]) > 0
        assert refused.headers["content-type"].startswith("application/problem+json")
    accepted = {r.json()["id"] for _, r in answers if r.status_code == 201}
    with stack.client() as client:  # a new connection: maybe the other API process
        listed = stack.get_json(client, "/v1/jobs", params={"limit": 200})["items"]
        assert accepted <= {j["id"] for j in listed}
        # A refused submission wrote nothing: retried with its key, it makes one new job.
        key, _ = next((k, r) for k, r in answers if r.status_code == 503)
        again = submit(client, body, key=key)
        assert again not in accepted
        assert submit(client, body, key=key) == again  # and its replay is that job
        for job_id in accepted | {again}:  # leave the worker free
            client.post(f"/v1/jobs/{job_id}/cancel")


def test_s3_stopped_mid_generate_fails_cleanly_or_succeeds_whole(stack: Stack):
    count = 3000  # PNGs: thousands of writes, so the store goes down mid-job
    with stack.client() as client:
        job_id = submit(client, {"kind": "generate", "model": "stack", "count": count, "seed": 2,
                                 "config": {"sampler": "ddim", "steps": 3},
                                 "output_format": "png"})  # fmt: skip
    stack.wait_step(job_id, 1)
    stack.compose("stop", "seaweedfs", timeout=120)
    time.sleep(20)
    stack.compose("start", "seaweedfs", timeout=120)
    done = stack.wait_job(job_id, TERMINAL, timeout_s=600)
    with stack.client() as client:
        # One page holds them all (3,000 images and the job's other files; a page is ≤ 10,000).
        page = stack.get_json(client, f"/v1/jobs/{job_id}/artifacts", params={"limit": 10_000})
    assert page["next_cursor"] is None
    items = page["items"]
    if done["status"] == "succeeded":
        assert len([i for i in items if i["name"].startswith("images/")]) == count
    else:
        assert done["status"] == "failed" and done["error"]["type"] == "StorageError", done
        assert items == []  # nothing half-written left behind
