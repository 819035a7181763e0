"""The lifecycle the uploaded things share, written once: a dataset and a model import
each move awaiting_upload → working (validating | importing) → done (ready | registered)
| invalid, each step a conditional UPDATE, and a service job does the working.

A row whose job ends without saying done or invalid (failed, canceled by its owner or by
the dataset's deletion, given up by the reconciler) becomes invalid with the job's error
in the very transaction that ends the job: ``transition()`` (core/jobs/transitions.py,
the one writer of a job's status) calls :func:`job_ended`. So reads never write: a GET
shows what is stored, and what is stored is already settled. :func:`settle_stale`, run
by the reconciler, repairs rows an older server left working after their job ended.

Like everything in core/, nothing here commits: the caller's transaction holds it all.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.datasets.orm import Dataset, DatasetStatus
from core.db import utcnow
from core.imports.orm import ImportStatus, ModelImport
from core.jobs.orm import Job
from core.jobs.states import JobKind, JobStatus

Row = type[Dataset] | type[ModelImport]

# Per kind of service job: the table it works on, the request key naming the row, and
# the row's working and invalid statuses.
SERVICE_JOBS: dict[JobKind, tuple[Row, str, str, str]] = {
    JobKind.validate_dataset: (
        Dataset,
        "dataset",
        DatasetStatus.validating,
        DatasetStatus.invalid,
    ),
    JobKind.import_model: (
        ModelImport,
        "import",
        ImportStatus.importing,
        ImportStatus.invalid,
    ),
}
WORKING_AND_INVALID = {model: (w, i) for model, _, w, i in SERVICE_JOBS.values()}
ENDED_WITHOUT_SUCCESS = (JobStatus.failed, JobStatus.canceled)


def move(
    session: Session, model: Row, row_id: str, source: str, target: str, **values: Any
) -> bool:
    """``source`` → ``target`` (with ``values``) by a conditional UPDATE; False when the
    row is no longer in ``source`` (deleted, or moved by a concurrent writer)."""
    result = session.execute(
        update(model)
        .where(model.id == row_id, model.status == source)
        .values(status=target, **values)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined,no-any-return]


def fail(session: Session, model: Row, row_id: str, error: dict[str, str]) -> bool:
    """working → invalid with ``error``: what a service job's failure leaves."""
    working, invalid = WORKING_AND_INVALID[model]
    return move(session, model, row_id, working, invalid, error=error, completed_at=utcnow())


def why_ended(job_id: str, status: JobStatus | str, error: dict[str, Any] | None) -> dict[str, str]:
    """A job's failure as the row it worked on records it ({type, message})."""
    if status == JobStatus.failed and error:
        return {"type": str(error["type"]), "message": str(error["message"])}
    return {"type": "Canceled", "message": f"job {job_id} was canceled before it finished"}


def job_ended(
    *, session: Session, job_id: str, status: JobStatus, error: dict[str, Any] | None
) -> None:
    """The job just moved to ``status`` (failed or canceled): when it is a service job,
    the row it was working on becomes invalid with its error. A row already done or
    invalid (the job said so itself) is left as it is."""
    found = session.execute(select(Job.kind, Job.request).where(Job.id == job_id)).first()
    if found is None or JobKind(found.kind) not in SERVICE_JOBS:
        return
    model, key, _, _ = SERVICE_JOBS[JobKind(found.kind)]
    row_id = (found.request or {}).get(key)
    if row_id is not None:
        fail(session, model, str(row_id), why_ended(job_id, status, error))


def settle_stale(*, session: Session) -> int:
    """Rows still working whose job already ended without success (left so by a server
    from before :func:`job_ended`), made invalid; how many."""
    settled = 0
    for model, _, working, _ in SERVICE_JOBS.values():
        stale = session.execute(
            select(model.id, Job.id, Job.status, Job.error)
            .join(Job, Job.id == model.job_id)
            .where(model.status == working, Job.status.in_(ENDED_WITHOUT_SUCCESS))
        ).all()
        for row_id, job_id, status, error in stale:
            settled += fail(session, model, row_id, why_ended(job_id, status, error))
    return settled
