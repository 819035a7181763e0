"""Estimates (core/jobs/estimates.py) measure the speed on the worker queue the job would
run on: a train job on N GPUs (queue gpu.N) is not estimated from one-GPU jobs (gpu); a
step's work is its pixels, so a rate is scaled to the size the job will train at."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import TypeAdapter

from core.db import session_scope, utcnow
from core.jobs.estimates import estimate
from core.jobs.orm import Job
from core.jobs.schemas import AnyJobIn
from core.migrate import upgrade
from core.model_versions.orm import ModelVersion
from core.tenants.orm import Tenant
from models.engine_options import CONFIGS

NOW = utcnow()
BODY = {"kind": "train", "engine": "ddpm", "dataset": "digits", "model_name": "m",
        "config": {"max_steps": 1000}}  # fmt: skip


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path}/t.db"
    upgrade(url)
    with session_scope(url) as s:
        s.add(Tenant(id="t", name="t"))
    return url


BATCH = CONFIGS["ddpm"]().resolved(16).batch_size  # what BODY resolves to on digits (16 px)


def finished(
    db: str, *, steps: int, seconds: float, gpus: int = 1, size: int = 16, batch: int = BATCH
) -> None:
    """A succeeded ddpm train job that ran ``steps`` steps in ``seconds`` and registered
    a version of ``batch`` images a step at ``size`` px."""
    request = {**BODY, **({"gpus": gpus} if gpus > 1 else {})}
    with session_scope(db) as s:
        job = Job(tenant_id="t", kind="train", status="succeeded", request=request,
                  progress={"step": steps}, created_at=NOW - timedelta(seconds=seconds + 1),
                  started_at=NOW - timedelta(seconds=seconds), completed_at=NOW)  # fmt: skip
        s.add(job)
        s.flush()
        s.add(ModelVersion(tenant_id="t", name=job.id, version=1, engine="ddpm",
                           dataset="digits:train", config={"batch_size": batch},
                           spec={"image_shape": [1, size, size]}, checkpoint_uri="file:///m",
                           train_job_id=job.id))  # fmt: skip


def answer(db: str, **body):
    job_in = TypeAdapter(AnyJobIn).validate_python({**BODY, **body})
    with session_scope(db) as s:
        return estimate(session=s, tenant=s.get(Tenant, "t"), job_in=job_in)


def test_each_queue_is_estimated_from_the_jobs_that_ran_on_it(db):
    finished(db, steps=100, seconds=50)  # 0.5 s a step on the gpu queue
    finished(db, steps=100, seconds=10, gpus=2)  # 0.1 s a step on gpu.2
    one = answer(db)
    two = answer(db, gpus=2)
    assert one.seconds == pytest.approx(500) and "on the gpu queue's workers" in one.basis
    assert two.seconds == pytest.approx(100) and "on the gpu.2 queue's workers" in two.basis
    assert "last 1 ddpm train job(s)" in one.basis and "last 1 ddpm train job(s)" in two.basis


def test_no_job_on_the_queue_no_estimate_even_with_jobs_on_another(db):
    finished(db, steps=100, seconds=50)
    four = answer(db, gpus=4)
    assert four.seconds is None
    assert "no finished ddpm train job of this tenant on the gpu.4 queue's workers" in four.basis


def test_a_rate_measured_at_one_size_is_scaled_by_pixels_per_step(db):
    finished(db, steps=100, seconds=50, size=8, batch=BATCH * 2)  # 0.5 s a step at 8 px
    at_16 = answer(db)  # the same BODY on digits trains at 16 px: half the batch, 4× the pixels
    assert at_16.seconds == pytest.approx(1000 * 0.5 * 2)
    assert f"{BATCH} images at 16 px" in at_16.basis
    at_32 = answer(db, config={"max_steps": 1000, "image_size": 32, "batch_size": BATCH})
    assert at_32.seconds == pytest.approx(1000 * 0.5 * 8)


def test_a_size_unknown_before_the_run_is_estimated_per_step(db):
    finished(db, steps=100, seconds=50, size=8)
    # An upload's name that resolves to nothing here: its size is the run's to find out.
    unknown = answer(db, dataset="someones-upload")
    assert unknown.seconds == pytest.approx(500)
    assert "1,000 steps at 0.5 s per step" in unknown.basis
