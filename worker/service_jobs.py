"""What the jobs the service makes itself (dataset validation, model import) share: the
row they work on, checked to be the job's tenant's and still waiting for them, and
removing what they wrote when they fail."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar

from core.db import session_scope
from core.errors import InvalidRequest, NotFound
from core.storage import Storage
from worker.context import JobContext


class ServiceRow(Protocol):
    id: Any
    tenant_id: Any
    status: Any


RowT = TypeVar("RowT", bound=ServiceRow)


def waiting_row(ctx: JobContext, model: type[RowT], key: str, status: str, what: str) -> RowT:
    """The ``model`` row named by the job's request ``key``, detached; NotFound unless it
    is the job's tenant's, InvalidRequest unless it is in ``status``."""
    with session_scope(ctx.settings.database_url) as session:
        row = session.get(model, ctx.job.request[key])
        if row is None or row.tenant_id != ctx.job.tenant_id:
            raise NotFound(f"the {what} this job works on no longer exists")
        if row.status != status:
            raise InvalidRequest(f"{what} {row.id} is {row.status}, not {status}")
        session.expunge(row)
    return row


@contextmanager
def removed_on_failure(storage: Storage, *prefixes: str) -> Iterator[None]:
    """Delete every object under ``prefixes`` when the block fails: a refused upload
    leaves nothing behind. Not on a worker shutdown, when the job is re-queued and
    starts again from its upload."""
    try:
        yield
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException:
        for prefix in prefixes:
            storage.delete_prefix(prefix)
        raise
