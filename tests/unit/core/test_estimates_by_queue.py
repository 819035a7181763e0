"""Estimates (core/jobs/estimates.py) measure the speed on the worker queue the job would
run on: a train job on N GPUs (queue gpu.N) is not estimated from one-GPU jobs (gpu)."""

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
from core.tenants.orm import Tenant

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


def finished(db: str, *, steps: int, seconds: float, gpus: int = 1) -> None:
    """A succeeded ddpm train job that ran ``steps`` steps in ``seconds``."""
    request = {**BODY, **({"gpus": gpus} if gpus > 1 else {})}
    with session_scope(db) as s:
        s.add(Job(tenant_id="t", kind="train", status="succeeded", request=request,
                  progress={"step": steps}, created_at=NOW - timedelta(seconds=seconds + 1),
                  started_at=NOW - timedelta(seconds=seconds), completed_at=NOW))  # fmt: skip


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
