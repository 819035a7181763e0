"""Concurrent submits share statements (core/jobs/group_insert.py) and each keeps its own
outcome: written with its event and outbox rows, its key taken, its tenant at the cap, or
its own error while its neighbours are written."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from core.db import autocommit_engine, session_scope, utcnow
from core.jobs import group_insert
from core.jobs.orm import IdempotencyKey, Job, JobEvent, Outbox
from core.tenants import service as tenants
from tests.integration.conftest import migrated_database
from tests.servers import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def database() -> Iterator[tuple[str, str]]:
    with migrated_database("synthgen_group") as url:
        with session_scope(url) as session:
            tenant_id = tenants.get_or_create_tenant(session=session, name="a").id
        yield url, tenant_id
        autocommit_engine(url).dispose()


def _row(tenant_id: str, key: str | None = None) -> group_insert.Row:
    now = utcnow()
    return group_insert.Row(
        id=str(uuid.uuid4()),
        tenant_id=tenant_id,
        kind="train",
        request={"kind": "train"},
        model_version_id=None,
        created_at=now,
        key=key,
        fingerprint="f" * 64 if key else None,
        expires_at=now if key else None,
        queue="gpu",
    )


class Recording(group_insert.GroupInsert):
    """Counts the rows of each statement; the first one waits until ``hold`` is set."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.batches: list[int] = []
        self.hold = threading.Event()

    def _statement(self, rows: list[group_insert.Row]) -> dict[str, group_insert.Outcome]:
        if not self.batches:
            self.hold.wait(30)
        self.batches.append(len(rows))
        return super()._statement(rows)

    def queued(self) -> int:
        with self._lock:
            return len(self._queue)

    def busy_with_first(self) -> bool:
        with self._lock:
            return self._busy and not self._queue


def _run_all(inserter: Recording, rows: list[group_insert.Row]) -> dict[str, Any]:
    """Insert each row from a thread of its own: the first one's statement is held until
    all the others wait behind it. Returns each row's outcome or error by id."""
    answers: dict[str, Any] = {}

    def one(row: group_insert.Row) -> None:
        try:
            answers[row.id] = inserter.insert(row)
        except Exception as exc:  # noqa: BLE001 - the test looks at each row's error
            answers[row.id] = exc

    first = threading.Thread(target=one, args=(rows[0],))
    first.start()
    wait_for(inserter.busy_with_first, 10, "the first statement in flight")
    others = [threading.Thread(target=one, args=(r,)) for r in rows[1:]]
    for t in others:
        t.start()
    wait_for(lambda: inserter.queued() == len(rows) - 1, 10, "the others queued behind it")
    inserter.hold.set()
    for t in [first, *others]:
        t.join(30)
    return answers


def _count(url: str, table: type, job_ids: list[str]) -> int:
    column = table.id if table is Job else table.job_id  # type: ignore[attr-defined]
    with session_scope(url) as session:
        return int(session.scalar(select(func.count()).where(column.in_(job_ids))) or 0)


def test_submits_arriving_during_a_statement_share_the_next_one(database):
    url, tenant_id = database
    inserter = Recording(autocommit_engine(url), max_queued=0, task_name="t")
    rows = [_row(tenant_id, key=f"k-{uuid.uuid4()}") for _ in range(12)]
    answers = _run_all(inserter, rows)
    assert inserter.batches == [1, 11]
    assert all(answers[r.id] == (0, True) for r in rows), answers
    ids = [r.id for r in rows]
    for table in (Job, JobEvent, Outbox, IdempotencyKey):
        assert _count(url, table, ids) == len(rows)


def test_the_same_key_twice_in_one_statement_writes_one_job(database):
    url, tenant_id = database
    inserter = Recording(autocommit_engine(url), max_queued=0, task_name="t")
    rows = [_row(tenant_id, key="k-dup-0")] + [_row(tenant_id, key="k-dup") for _ in range(2)]
    answers = _run_all(inserter, rows)
    assert inserter.batches == [1, 2]
    assert sorted(answers[r.id][1] for r in rows[1:]) == [False, True]
    assert _count(url, Job, [r.id for r in rows]) == 2


def test_a_row_postgres_refuses_fails_alone(database):
    url, tenant_id = database
    inserter = Recording(autocommit_engine(url), max_queued=0, task_name="t")
    rows = [_row(tenant_id), _row(tenant_id), _row("no-such-tenant"), _row(tenant_id)]
    answers = _run_all(inserter, rows)
    assert isinstance(answers[rows[2].id], IntegrityError)
    assert [answers[r.id] for r in (rows[0], rows[1], rows[3])] == [(0, True)] * 3
    assert _count(url, Job, [r.id for r in rows]) == 3


def test_a_tenant_at_its_queued_cap_gets_nothing_written(database):
    url, _ = database
    with session_scope(url) as session:
        tenant_id = tenants.get_or_create_tenant(session=session, name="capped").id
    inserter = group_insert.GroupInsert(autocommit_engine(url), max_queued=2, task_name="t")
    outcomes = [inserter.insert(_row(tenant_id)) for _ in range(3)]
    assert outcomes == [(0, True), (1, True), (2, False)]
