"""How the runner ends a job from its handler's Outcome: the files stored under the job's
prefix and recorded as artifacts, the registration committed with the success and the
result stored; a job canceled while its handler ran records and registers nothing; a
handler that raises (or a registration refused) stores nothing and leaves nothing.

The runner runs in this process with the train kind's handler replaced; the job's message
is not sent (the session's real worker, if an earlier test started it, would take it)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from core import queue
from core.artifacts.orm import Artifact
from core.db import session_scope
from core.jobs.states import JobKind
from core.model_versions.orm import ModelVersion
from core.storage import from_settings as storage_from_settings
from worker import runner
from worker.context import JobContext
from worker.handlers import HANDLERS
from worker.outcome import DatasetReady, File, NewVersion, Outcome

pytestmark = pytest.mark.integration

TRAIN = {"kind": "train", "engine": "ddpm", "dataset": "shapes", "model_name": "outcome"}


def _version(name: str) -> NewVersion:
    return NewVersion(
        name=name,
        engine="ddpm",
        dataset="shapes:train",
        config={"image_size": 16},
        spec={"num_classes": 2},
        metrics={"training": {"loss": 0.5}},
        lineage={"created_by": "train"},
    )


def _run(settings, tenant, monkeypatch, handler: Callable[[JobContext[Any]], Outcome]) -> dict:
    monkeypatch.setitem(HANDLERS, JobKind.train, handler)
    monkeypatch.setattr(queue, "publish_jobs", lambda *args, **kwargs: None)  # no worker runs it
    job = tenant.submit({**TRAIN, "model_name": f"outcome-{uuid.uuid4().hex[:8]}"})
    runner.run_job(job["id"], settings=settings)
    return tenant.get(f"/v1/jobs/{job['id']}").json()


def _versions(settings, name: str) -> list[ModelVersion]:
    with session_scope(settings.database_url) as session:
        return list(session.scalars(select(ModelVersion).where(ModelVersion.name == name)))


def _artifacts(settings, job_id: str) -> dict[str, Artifact]:
    with session_scope(settings.database_url) as session:
        rows = session.scalars(select(Artifact).where(Artifact.job_id == job_id))
        return {row.name: row for row in rows}


def test_the_runner_stores_records_registers_and_ends_the_job(settings, tenant, monkeypatch):
    seen: dict[str, Any] = {}

    def handler(ctx: JobContext[Any]) -> Outcome:
        seen["request"] = ctx.request
        local = ctx.workdir / "curve.jsonl"
        local.write_bytes(b'{"step": 1}\n')
        weights = ctx.put_bytes("model/weights.bin", b"w" * 10)  # written while running
        return Outcome(
            result={"answer": 42},
            files=[
                File("grid.png", b"png bytes"),
                File("metrics.jsonl", local, "application/x-ndjson"),
                File("model/weights.bin", weights),
            ],
            register=_version(ctx.request.model_name),
        )

    done = _run(settings, tenant, monkeypatch, handler)

    # The request came parsed with the submit schema, its defaults filled in.
    assert type(seen["request"]).__name__ == "TrainDDPM" and seen["request"].gpus == 1
    assert done["status"] == "succeeded"
    name = done["request"]["model_name"]
    (version,) = _versions(settings, name)
    assert done["result"] == {
        "answer": 42,
        "model_version": {"id": version.id, "name": name, "version": 1},
    }
    assert version.train_job_id == done["id"]
    assert version.checkpoint_uri == f"jobs/{done['id']}/model/"
    assert version.lineage == {"created_by": "train"} and version.spec == {"num_classes": 2}

    artifacts = _artifacts(settings, done["id"])
    assert set(artifacts) == {"grid.png", "metrics.jsonl", "model/weights.bin"}
    assert artifacts["metrics.jsonl"].content_type == "application/x-ndjson"
    assert artifacts["grid.png"].content_type == "image/png"
    assert [a.size for a in map(artifacts.get, ["grid.png", "model/weights.bin"])] == [9, 10]
    storage = storage_from_settings(settings)
    for artifact_name, artifact in artifacts.items():
        assert artifact.key == f"jobs/{done['id']}/{artifact_name}"
    assert storage.get_bytes(artifacts["metrics.jsonl"].key) == b'{"step": 1}\n'
    assert storage.get_bytes(artifacts["grid.png"].key) == b"png bytes"


def test_a_job_canceled_while_its_handler_ran_registers_and_records_nothing(
    settings, tenant, monkeypatch
):
    def handler(ctx: JobContext[Any]) -> Outcome:
        assert tenant.post(f"/v1/jobs/{ctx.job.id}/cancel").status_code == 200  # meanwhile
        return Outcome(
            result={"answer": 42},
            files=[File("grid.png", b"png bytes")],
            register=_version(ctx.request.model_name),
        )

    done = _run(settings, tenant, monkeypatch, handler)

    assert done["status"] == "canceled" and done["result"] is None
    assert _versions(settings, done["request"]["model_name"]) == []
    assert _artifacts(settings, done["id"]) == {}
    assert storage_from_settings(settings).list(f"jobs/{done['id']}/") == []


def test_a_handler_that_raises_stores_nothing_and_leaves_nothing(settings, tenant, monkeypatch):
    elsewhere = f"datasets/ds_{uuid.uuid4().hex}/"

    def handler(ctx: JobContext[Any]) -> Outcome:
        ctx.delete_on_failure(elsewhere)
        ctx.storage.put_bytes(f"{elsewhere}data.npz", b"half")
        ctx.put_bytes("checkpoint/step", b'{"step": 3}')
        raise RuntimeError("the engine gave up")

    done = _run(settings, tenant, monkeypatch, handler)

    assert done["status"] == "failed" and done["result"] is None
    assert _versions(settings, done["request"]["model_name"]) == []
    assert _artifacts(settings, done["id"]) == {}
    storage = storage_from_settings(settings)
    assert storage.list(f"jobs/{done['id']}/") == [] and storage.list(elsewhere) == []


def test_a_refused_registration_fails_the_job_and_records_nothing(settings, tenant, monkeypatch):
    elsewhere = f"datasets/ds_{uuid.uuid4().hex}/"

    def handler(ctx: JobContext[Any]) -> Outcome:
        ctx.delete_on_failure(elsewhere)
        preview = ctx.storage.put_bytes(f"{elsewhere}preview.png", b"png")
        # No such dataset is validating: marking it ready is refused, in the transaction.
        return Outcome(
            result={"dataset": "gone"},
            files=[File("preview.png", preview), File("grid.png", b"png bytes")],
            register=DatasetReady("ds_gone", "0" * 64, {}),
        )

    done = _run(settings, tenant, monkeypatch, handler)

    assert done["status"] == "failed"
    assert done["error"]["type"] == "DatasetNotFound"
    assert _artifacts(settings, done["id"]) == {}
    storage = storage_from_settings(settings)
    assert storage.list(f"jobs/{done['id']}/") == [] and storage.list(elsewhere) == []
