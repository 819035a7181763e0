"""POST /v1/estimates: a job's run time before it is submitted, from the speed this
tenant's finished jobs of the same kind and engine measured; none without such a job."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from core.db import session_scope
from core.jobs.orm import Job
from tests.integration.conftest import TINY_DDPM

pytestmark = pytest.mark.integration

TRAIN = {"kind": "train", "engine": "ddpm", "dataset": "shapes", "model_name": "est"}


def test_no_estimate_before_a_job_of_the_engine_has_run(tenant):
    answer = tenant.post("/v1/estimates", json={**TRAIN, "config": TINY_DDPM})
    assert answer.status_code == 200, answer.text
    assert answer.json()["seconds"] is None
    assert "no finished ddpm train job" in answer.json()["basis"]


def test_a_long_train_job_is_estimated_from_the_measured_speed(worker, tenant, settings):
    done = tenant.wait(tenant.submit({**TRAIN, "config": TINY_DDPM})["id"])
    assert done["status"] == "succeeded", done["error"]
    before = _jobs(settings)
    long = {**TRAIN, "config": {**TINY_DDPM, "max_steps": 1_000_000}}
    answer = tenant.post("/v1/estimates", json=long).json()
    short = tenant.post("/v1/estimates", json={**TRAIN, "config": TINY_DDPM}).json()
    assert answer["seconds"] == pytest.approx(short["seconds"] * 1_000_000 / TINY_DDPM["max_steps"])
    assert answer["seconds"] > 3600  # a million steps of anything is more than an hour
    assert "1,000,000 steps" in answer["basis"] and "last 1 ddpm train job" in answer["basis"]
    assert "16 images at 8 px" in answer["basis"]
    # A step of twice the side and twice the batch is eight times the pixels: the rate
    # measured at 8 px is scaled, not reused per step.
    bigger = {**TINY_DDPM, "image_size": 16, "batch_size": 32}
    scaled = tenant.post("/v1/estimates", json={**TRAIN, "config": bigger}).json()
    assert scaled["seconds"] == pytest.approx(short["seconds"] * 8)
    assert "32 images at 16 px" in scaled["basis"]
    # Left out, the size is the dataset's own (shapes: 16 px), as the worker resolves it.
    native = {k: v for k, v in bigger.items() if k != "image_size"}
    assert tenant.post("/v1/estimates", json={**TRAIN, "config": native}).json() == scaled
    assert _jobs(settings) == before  # an estimate submits nothing


def test_an_estimate_checks_the_body_as_a_submit_does(tenant):
    answer = tenant.post("/v1/estimates", json={**TRAIN, "dataset": "no-such-set"})
    assert answer.status_code == 404
    assert answer.json()["invalid_params"][0]["name"] == "dataset"


def _jobs(settings) -> int:
    with session_scope(settings.database_url) as session:
        return int(session.scalar(select(func.count()).select_from(Job)))
