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
    """(the status run_job ended in, the status stored, what is left of the owned folder)."""
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
    # No worker runs it: neither its submit's message nor the one its requeue sends.
    monkeypatch.setattr(queue, "publish_jobs", lambda *args, **kwargs: None)
    monkeypatch.setattr(queue, "publish_job", lambda *args, **kwargs: None)
    job = tenant.submit(TRAIN)
    try:
        status = runner.run_job(job["id"], settings=settings)
    finally:
        preemption.REQUESTED.clear()
    stored = tenant.get(f"/v1/jobs/{job['id']}").json()["status"]
    if status == "queued":  # nor the reconciler's resend of a message it thinks lost
        tenant.post(f"/v1/jobs/{job['id']}/cancel")
    left = storage.list(owned)
    storage.delete_prefix(owned)
    return status, stored, left


def test_a_preempted_job_keeps_what_it_owns_for_its_next_run(settings, tenant, monkeypatch):
    status, stored, left = _run(settings, tenant, monkeypatch, preempt=True)
    assert status == stored == "queued"
    assert [o.key for o in left] == ["datasets/preempt-test-p/upload.zip"]


def test_a_failed_job_deletes_what_it_owns(settings, tenant, monkeypatch):
    status, stored, left = _run(settings, tenant, monkeypatch, preempt=False)
    assert status == stored == "failed"
    assert left == []
