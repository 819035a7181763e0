"""What the jobs the service makes itself (dataset validation, model import) share: the
row they work on, checked to be the job's tenant's and still waiting for them."""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

from core.db import session_scope
from core.errors import InvalidRequest, NotFound
from worker.context import JobContext


class ServiceRow(Protocol):
    id: Any
    tenant_id: Any
    status: Any


RowT = TypeVar("RowT", bound=ServiceRow)


def waiting_row(ctx: JobContext, model: type[RowT], row_id: str, status: str, what: str) -> RowT:
    """The ``model`` row ``row_id`` (named by the job's request), detached; NotFound
    unless it is the job's tenant's, InvalidRequest unless it is in ``status``."""
    with session_scope(ctx.settings.database_url) as session:
        row = session.get(model, row_id)
        if row is None or row.tenant_id != ctx.job.tenant_id:
            raise NotFound(f"the {what} this job works on no longer exists")
        if row.status != status:
            raise InvalidRequest(f"{what} {row.id} is {row.status}, not {status}")
        session.expunge(row)
    return row
