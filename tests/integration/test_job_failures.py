"""How a failing handler ends its job: a user's mistake with its message, a bug without.

The runner runs in this process with the train kind's handler replaced. The job's message
is not sent: the session's real worker, if an earlier test started it, would take the job
first."""

from __future__ import annotations

import logging

import pytest

from core import queue
from core.jobs.states import JobKind
from core.storage import from_settings as storage_from_settings
from models.engines.base import EngineError
from worker import runner
from worker.handlers import HANDLERS

pytestmark = pytest.mark.integration

TRAIN = {"kind": "train", "engine": "ddpm", "dataset": "shapes", "model_name": "f"}


def _run_failing(settings, tenant, monkeypatch, exc: Exception) -> dict:
    def handler(ctx: runner.JobContext) -> None:
        ctx.storage.put_bytes(f"{ctx.prefix}/partial.bin", b"half a file")
        raise exc

    monkeypatch.setitem(HANDLERS, JobKind.train, handler)
    monkeypatch.setattr(queue, "publish_jobs", lambda *args, **kwargs: None)  # no worker runs it
    job = tenant.submit(TRAIN)
    assert runner.run_job(job["id"], settings=settings) == "failed"
    return tenant.get(f"/v1/jobs/{job['id']}").json()


def test_a_users_mistake_reaches_the_jobs_error_as_it_was_raised(settings, tenant, monkeypatch):
    done = _run_failing(settings, tenant, monkeypatch, EngineError("batch_size must be at least 2"))
    assert done["status"] == "failed"
    assert done["error"] == {"type": "EngineError", "message": "batch_size must be at least 2"}


def test_a_value_error_in_a_handler_is_a_bug_reported_by_id_not_by_message(
    settings, tenant, monkeypatch, caplog
):
    with caplog.at_level(logging.ERROR, logger="synthgen.worker"):
        done = _run_failing(
            settings, tenant, monkeypatch, ValueError("operands could not be broadcast (3,) (4,)")
        )
    assert done["status"] == "failed"
    assert done["error"]["type"] == "InternalError"
    assert "broadcast" not in done["error"]["message"]
    (logged,) = [r for r in caplog.records if getattr(r, "error_id", None)]
    assert f"error id {logged.error_id}" in done["error"]["message"]
    assert "broadcast" in str(logged.exc_info[1])
    assert storage_from_settings(settings).list(f"jobs/{done['id']}/") == []  # partial.bin
