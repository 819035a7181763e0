"""Workers killed (SIGKILL) and stopped (SIGTERM, as on preemption) mid-job."""

from __future__ import annotations

import csv
import io
import os
import re
import signal
import tempfile
from pathlib import Path

import pytest
import torch

from tests.faults.conftest import FAULT_DDPM, Stack, safetensors_of
from tests.servers import wait_for


def reference_weights(config: dict) -> bytes:
    """model.safetensors of an uninterrupted run, trained here on one thread as the
    worker trains (OMP_NUM_THREADS=1)."""
    from models import datasets, engines

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        engine = engines.get("ddpm")
        data = datasets.load("shapes", split="train", image_size=config["image_size"])
        trained = engine.train(data, config)
        with tempfile.TemporaryDirectory() as directory:
            engine.save(trained, Path(directory))
            return (Path(directory) / "model.safetensors").read_bytes()
    finally:
        torch.set_num_threads(threads)


def train_body(name: str, **config) -> dict:
    return {
        "kind": "train",
        "engine": "ddpm",
        "dataset": "shapes",
        "model_name": name,
        "config": {**FAULT_DDPM, **config},
    }


def submit(client, body: dict) -> str:
    response = client.post("/v1/jobs", json=body)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_sigkilled_worker_mid_train_resumes_bit_exact_on_a_new_worker(stack: Stack):
    config = {**FAULT_DDPM, "max_steps": 120, "checkpoint_every": 20}
    client = stack.tenant()
    stack.beat()
    first = stack.worker()
    job_id = submit(client, train_body("killed", **config))
    stack.wait_step(job_id, 45)  # past two checkpoints
    first.signal(signal.SIGKILL)
    first.proc.wait(timeout=10)

    stack.worker()
    done = stack.wait_job(job_id, {"succeeded", "failed", "canceled"})
    assert done.status == "succeeded", done.error
    assert done.attempts == 2
    assert done.preemptions == 0
    # From the last checkpoint before the kill (every 20 steps, the kill past step 45).
    assert done.result["resumed_from_step"] >= 40 and done.result["resumed_from_step"] % 20 == 0
    assert stack.events(job_id) == ["queued", "running", "queued", "running", "succeeded"]
    assert client.get(f"/v1/jobs/{job_id}").json()["attempts"] == 2
    assert safetensors_of(stack, job_id) == reference_weights(
        {**config, "image_size": FAULT_DDPM["image_size"]}
    )


def test_sigterm_checkpoints_requeues_without_failure_and_worker_exits(stack: Stack):
    config = {**FAULT_DDPM, "max_steps": 150, "checkpoint_every": 1000}  # no periodic one
    client = stack.tenant()
    worker = stack.worker()
    job_id = submit(client, train_body("preempted", **config))
    stack.wait_step(job_id, 30)
    marker = f"jobs/{job_id}/checkpoint/step"
    assert not stack.storage.exists(marker)

    worker.signal(signal.SIGTERM)
    wait_for(lambda: stack.storage.exists(marker), 10, "a checkpoint after SIGTERM")
    queued = stack.wait_job(job_id, {"queued", "failed", "succeeded"}, timeout_s=10)
    assert queued.status == "queued"
    assert (queued.attempts, queued.preemptions, queued.error) == (1, 1, None)
    assert worker.proc.wait(timeout=30) == 0  # inside a typical 30 s grace period

    stack.worker()
    done = stack.wait_job(job_id, {"succeeded", "failed", "canceled"})
    assert done.status == "succeeded", done.error
    assert client.get(f"/v1/jobs/{job_id}").json()["preemptions"] == 1
    assert done.attempts == 2
    assert done.result["resumed_from_step"] >= 30  # the checkpoint SIGTERM wrote
    assert safetensors_of(stack, job_id) == reference_weights(
        {**config, "image_size": FAULT_DDPM["image_size"]}
    )


@pytest.fixture()
def model(stack: Stack):
    """A client whose tenant has a trained model "tiny" (trained by a worker of its own)."""
    client = stack.tenant()
    worker = stack.worker()
    job_id = submit(client, train_body("tiny", max_steps=4))
    assert stack.wait_job(job_id, {"succeeded", "failed"}).status == "succeeded"
    worker.stop()
    return client


def test_sigkill_mid_generate_reuses_written_shards_and_makes_exactly_count(stack: Stack, model):
    count = 16 * 12 + 5  # 13 shards of 16, the last one short
    stack.beat()
    first = stack.worker()
    body = {"kind": "generate", "model": "tiny", "count": count, "seed": 7,
            "config": {"sampler": "ddpm"}, "output_format": "png"}  # fmt: skip
    job_id = submit(model, body)
    shards = f"jobs/{job_id}/shards/"
    wait_for(lambda: len(stack.storage.list(shards)) >= 3, 120, "three shards written")
    first.signal(signal.SIGKILL)
    first.proc.wait(timeout=10)
    written = len(stack.storage.list(shards))

    stack.worker()
    done = stack.wait_job(job_id, {"succeeded", "failed", "canceled"})
    assert done.status == "succeeded", done.error
    assert done.attempts == 2
    assert done.result["count"] == count
    assert done.result["shards"] == {"total": 13, "reused": written}
    images = stack.storage.list(f"jobs/{job_id}/images/")
    assert sorted(o.key.rsplit("/", 1)[1] for o in images) == [f"{i:06d}.png" for i in range(count)]
    manifest = stack.read(f"jobs/{job_id}/manifest.csv").decode()
    rows = list(csv.DictReader(io.StringIO(manifest)))
    assert len(rows) == count
    assert len({row["sha256"] for row in rows}) == count  # no image twice
    assert stack.storage.list(shards) == []


def pool_child(worker) -> int:
    """The pid of the worker's (only) pool process, the one running its job."""
    children = Path(f"/proc/{worker.pid}/task/{worker.pid}/children").read_text().split()
    assert len(children) == 1, children
    return int(children[0])


def test_worker_paused_past_its_heartbeat_timeout_stops_once_its_job_runs_elsewhere(
    stack: Stack,
):
    config = {**FAULT_DDPM, "max_steps": 200, "checkpoint_every": 20}
    client = stack.tenant()
    stack.beat()
    paused = stack.worker()
    job_id = submit(client, train_body("paused", **config))
    stack.wait_step(job_id, 25)
    child = pool_child(paused)
    os.kill(child, signal.SIGSTOP)  # a stalled host: no steps, no heartbeats

    stack.worker()
    wait_for(lambda: stack.job(job_id).attempts == 2, 60, "the job claimed again")
    os.kill(child, signal.SIGCONT)
    # The paused run ends at its next step: its successor is then still early in its run
    # (resumed from step 20 of 200), not near the end as beside a paused run going on.
    ended = re.compile(r"run_job\[[^]]+\] succeeded in [\d.]+s: '(\w+)'")
    status = wait_for(lambda: ended.findall(paused.text()), 120, "the paused run ending")
    assert status == ["running"]
    assert stack.job(job_id).progress["step"] < config["max_steps"] // 2

    done = stack.wait_job(job_id, {"succeeded", "failed", "canceled"})
    assert done.status == "succeeded", done.error
    assert stack.events(job_id) == ["queued", "running", "queued", "running", "succeeded"]
