"""GAN and EBM train and generate through REST exactly like DDPM: no engine-specific code
in api/ or worker/."""

from __future__ import annotations

import io

import httpx
import numpy as np
import pytest

pytestmark = pytest.mark.integration

TINY = {
    "gan": ({"max_steps": 3, "batch_size": 16, "image_size": 8, "width": 16}, {}),
    "ebm": (
        {
            "max_steps": 3,
            "batch_size": 16,
            "image_size": 8,
            "width": 16,
            "langevin_steps": 2,
            "sample_steps": 3,
        },
        {"steps": 3},
    ),
}


@pytest.mark.parametrize("engine", sorted(TINY))
def test_engine_trains_registers_and_generates_over_rest(worker, tenant, engine):
    train_cfg, sample_cfg = TINY[engine]
    job = tenant.submit(
        {
            "kind": "train",
            "engine": engine,
            "dataset": "shapes",
            "model_name": f"shapes-{engine}",
            "config": train_cfg,
        }
    )
    done = tenant.wait(job["id"])
    assert done["status"] == "succeeded", done["error"]
    assert set(done["progress"]["metrics"])  # every loss term is reported
    versions = tenant.get(f"/v1/models/shapes-{engine}/versions").json()
    assert versions[0]["engine"] == engine

    gen = tenant.submit(
        {
            "kind": "generate",
            "model": f"shapes-{engine}",
            "count": 10,
            "labels": [1],
            "config": sample_cfg,
            "output_format": "npz",
        }
    )
    done = tenant.wait(gen["id"])
    assert done["status"] == "succeeded", done["error"]
    items = {a["name"]: a for a in tenant.get(f"/v1/jobs/{gen['id']}/artifacts").json()["items"]}
    data = np.load(io.BytesIO(httpx.get(items["images.npz"]["url"]).content))
    assert data["images"].shape == (10, 3, 8, 8)
    assert data["labels"].tolist() == [1] * 10


def test_a_two_gpu_train_job_is_routed_to_a_two_gpu_worker_and_trains_data_parallel(worker, tenant):
    # The worker has (plays) two GPUs, so it consumes gpu.2: the job reaches it only there.
    job = tenant.submit(
        {
            "kind": "train",
            "engine": "gan",
            "dataset": "shapes",
            "model_name": "shapes-gan-x2",
            "gpus": 2,
            "config": {**TINY["gan"][0], "checkpoint_every": 2},
        }
    )
    done = tenant.wait(job["id"])
    assert done["status"] == "succeeded", done["error"]
    assert done["request"]["gpus"] == 2
    assert done["progress"]["step"] == 3 and "loss_d" in done["progress"]["metrics"]
    versions = tenant.get("/v1/models/shapes-gan-x2/versions").json()
    assert versions[0]["train_job_id"] == job["id"]


def test_sampling_option_of_another_engine_is_rejected_at_submit(worker, tenant):
    train_cfg, _ = TINY["gan"]
    job = tenant.submit(
        {
            "kind": "train",
            "engine": "gan",
            "dataset": "shapes",
            "model_name": "g",
            "config": train_cfg,
        }
    )
    assert tenant.wait(job["id"])["status"] == "succeeded"
    response = tenant.post(
        "/v1/jobs",
        json={"kind": "generate", "model": "g", "count": 2, "config": {"guidance_scale": 2.0}},
    )
    assert response.status_code == 422
    assert response.json()["invalid_params"][0]["name"] == "config.guidance_scale"


def test_diverged_training_fails_clearly_and_registers_nothing(worker, tenant):
    job = tenant.submit(
        {
            "kind": "train",
            "engine": "ddpm",
            "dataset": "shapes",
            "model_name": "nan",
            "config": {
                "max_steps": 5,
                "image_size": 8,
                "base_channels": 16,
                "lr": 10.0,
                "warmup_steps": 1,
            },
        }
    )
    done = tenant.wait(job["id"])
    assert done["status"] == "failed"
    assert done["error"]["type"] == "TrainingDiverged"
    assert "lr" in done["error"]["message"]
    assert tenant.get("/v1/models").json() == []
