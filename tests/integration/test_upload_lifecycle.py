"""Datasets and model imports share one lifecycle (core/upload_lifecycle.py): a row whose
validation or import job ends without saying ready/registered is invalid from the very
transaction that ends the job, reads (GET one, list) never write, and the reconciler
repairs rows an older server left working."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select, update

from core import upload_lifecycle
from core.datasets.orm import Dataset, DatasetStatus
from core.db import session_scope, utcnow
from core.imports.orm import ImportStatus, ModelImport
from core.jobs import submission, transitions
from core.jobs.orm import Job
from core.jobs.states import JobKind, JobStatus
from core.tenants.orm import Tenant
from worker.reconcile import reconcile

pytestmark = pytest.mark.integration

FAILURE = {"type": "CorruptImages", "message": "circle/001.png is truncated"}


def _working_rows(settings, tenant_name: str) -> tuple[str, str, str, str]:
    """A dataset being validated and an import being imported, each with its job queued
    (no message is sent: no worker takes them). Their ids and their jobs' ids."""
    with session_scope(settings.database_url) as session:
        owner = session.scalar(select(Tenant).where(Tenant.name == tenant_name))
        dataset_id, import_id = f"ds_{uuid.uuid4().hex}", f"imp_{uuid.uuid4().hex}"
        validation = submission.service_job(
            session=session,
            tenant=owner,
            kind=JobKind.validate_dataset,
            request={"kind": "validate_dataset", "dataset": dataset_id, "name": "signs"},
        )
        importing = submission.service_job(
            session=session,
            tenant=owner,
            kind=JobKind.import_model,
            request={"kind": "import_model", "import": import_id},
        )
        common = {"tenant_id": owner.id, "created_at": utcnow()}
        session.add(
            Dataset(
                id=dataset_id,
                name=f"signs-{dataset_id[-6:]}",
                format="zip",
                status=DatasetStatus.validating,
                test_fraction=0.2,
                skip_corrupt=False,
                upload_key=f"datasets/{dataset_id}/upload/original",
                job_id=validation.id,
                **common,
            )
        )
        session.add(
            ModelImport(
                id=import_id,
                model_name="tiny",
                format="diffusers",
                status=ImportStatus.importing,
                upload_key=f"imports/{import_id}/upload/original",
                job_id=importing.id,
                **common,
            )
        )
        return dataset_id, validation.id, import_id, importing.id


def _statuses(settings, dataset_id: str, import_id: str) -> tuple[str, str]:
    with session_scope(settings.database_url) as session:
        return (
            session.get(Dataset, dataset_id).status,
            session.get(ModelImport, import_id).status,
        )


def test_a_failed_validation_and_a_canceled_import_settle_their_rows_as_they_end(settings, tenant):
    dataset_id, validation, import_id, importing = _working_rows(settings, tenant.name)
    with session_scope(settings.database_url) as session:
        transitions.transition(session=session, job_id=validation, target=JobStatus.running)
        transitions.transition(
            session=session, job_id=validation, target=JobStatus.failed, error=FAILURE
        )
        # Nothing read in between: the job's own transaction moved the dataset.
        dataset = session.execute(
            select(Dataset.status, Dataset.error).where(Dataset.id == dataset_id)
        ).one()
        assert tuple(dataset) == (DatasetStatus.invalid, FAILURE)
    cancel = tenant.post(f"/v1/jobs/{importing}/cancel")
    assert cancel.status_code == 200, cancel.text
    assert _statuses(settings, dataset_id, import_id) == ("invalid", "invalid")

    shown = tenant.get(f"/v1/imports/{import_id}").json()
    assert shown["status"] == "invalid" and shown["error"]["type"] == "Canceled"
    listed = {i["id"]: i for i in tenant.get("/v1/imports").json()["items"]}
    assert listed[import_id]["status"] == "invalid"
    assert tenant.get(f"/v1/datasets/{dataset_id}").json()["error"] == FAILURE


def test_a_row_settled_by_its_job_is_not_moved_again(settings, tenant):
    dataset_id, validation, import_id, _ = _working_rows(settings, tenant.name)
    with session_scope(settings.database_url) as session:
        assert upload_lifecycle.move(
            session,
            Dataset,
            dataset_id,
            DatasetStatus.validating,
            DatasetStatus.ready,
            sha256="f" * 64,
        )
        transitions.transition(session=session, job_id=validation, target=JobStatus.canceled)
    assert _statuses(settings, dataset_id, import_id) == ("ready", "importing")


def test_reads_never_write_and_the_reconciler_repairs_what_an_older_server_left(settings, tenant):
    dataset_id, validation, import_id, importing = _working_rows(settings, tenant.name)
    with session_scope(settings.database_url) as session:
        # As a server from before this lifecycle ended them: the jobs alone.
        session.execute(
            update(Job)
            .where(Job.id == validation)
            .values(status=JobStatus.failed, error=FAILURE, completed_at=utcnow())
        )
        session.execute(
            update(Job)
            .where(Job.id == importing)
            .values(status=JobStatus.canceled, completed_at=utcnow())
        )

    for path in (
        f"/v1/datasets/{dataset_id}",
        "/v1/datasets",
        f"/v1/imports/{import_id}",
        "/v1/imports",
    ):
        assert tenant.get(path).status_code == 200
    assert _statuses(settings, dataset_id, import_id) == ("validating", "importing")

    assert reconcile(settings)["settled"] >= 2
    assert _statuses(settings, dataset_id, import_id) == ("invalid", "invalid")
    assert tenant.get(f"/v1/datasets/{dataset_id}").json()["error"] == FAILURE
    shown = tenant.get(f"/v1/imports/{import_id}").json()
    assert shown["error"] == {
        "type": "Canceled",
        "message": f"job {importing} was canceled before it finished",
    }
