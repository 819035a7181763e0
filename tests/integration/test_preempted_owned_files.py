"""A job preempted by its worker's warm shutdown keeps what it owns outside its own folder
(a dataset's upload, a model import's files): its next run starts over from them. A job
that fails deletes them.

The runner runs in this process with the train kind's handler replaced; the job's message
is not sent (the session's real worker, if an earlier test started it, would take it)."""

from __future__ import annotations

import pytest

from core import queue
from core.jobs.states import JobKind
from core.storage import from_settings as storage_from_settings
from worker import preemption, runner
from worker.handlers import HANDLERS

pytestmark = pytest.mark.integration

TRAIN = {"kind": "train", "engine": "ddpm", "dataset": "shapes", "model_name": "owned"}


def _run(settings, tenant, monkeypatch, *, preempt: bool) -> tuple[str, str, list]:
    storage = storage_from_settings(settings)
    owned = f"datasets/preempt-test-{'p' if preempt else 'f'}/"

    def handler(ctx: runner.JobContext) -> None:
        storage.put_bytes(f"{owned}upload.zip", b"the user's upload")
        ctx.delete_on_failure(owned)
        if preempt:
            preemption.REQUESTED.set()  # what SIGTERM's handler does
        assert ctx.should_stop() is preempt
        raise RuntimeError("stopped mid-step")

    monkeypatch.setitem(HANDLERS, JobKind.train, handler)
    monkeypatch.setattr(queue, "publish_jobs", lambda *args, **kwargs: None)  # no worker runs it
    job = tenant.submit(TRAIN)
    try:
        status = runner.run_job(job["id"], settings=settings)
    finally:
        preemption.REQUESTED.clear()
    left = storage.list(owned)
    storage.delete_prefix(owned)
    return job["id"], status, left


def test_a_preempted_job_keeps_what_it_owns_for_its_next_run(settings, tenant, monkeypatch):
    job_id, status, left = _run(settings, tenant, monkeypatch, preempt=True)
    assert status == "queued"
    assert tenant.get(f"/v1/jobs/{job_id}").json()["status"] == "queued"
    assert [o.key for o in left] == ["datasets/preempt-test-p/upload.zip"]


def test_a_failed_job_deletes_what_it_owns(settings, tenant, monkeypatch):
    _, status, left = _run(settings, tenant, monkeypatch, preempt=False)
    assert status == "failed"
    assert left == []
