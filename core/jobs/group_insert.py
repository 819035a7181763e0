"""Postgres: a job's rows — the job, its ``queued`` event, its outbox row and its
Idempotency-Key's row — written by one statement, for one job or for many at once.

``GroupInsert`` is group commit for submits, as Postgres does it for WAL flushes: a submit
that finds no statement in flight sends its rows at once (no wait added when idle);
submits arriving meanwhile queue, and the next statement carries all of them. Under load
each statement and commit carries several jobs, and that is where a submit's time went:
one job per statement cost ~330 µs of CPU between this process and Postgres, eight per
statement ~100 µs each (bench/submission.py, BENCHMARKS.md).

Each row keeps its own outcome in the statement's answer: written, its key already taken
(nothing written), or its tenant at the queued-jobs cap (nothing written; jobs of a batch
are counted against the cap as it stood before the batch, as concurrent submits always
were). A statement commits its rows together, being one statement; if it fails for any
reason but an unreachable database, each row is sent again alone, so a row Postgres
refuses fails only its own request.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

# One row per job, from one JSON array (one parameter for psycopg to adapt: ten arrays
# of the same rows cost it ~7% of an API process's time under bench/submission.py's
# load); the cap is the same for every row of a process.
SQL = """
WITH input AS (
    SELECT * FROM jsonb_to_recordset(%(rows)s::jsonb) AS t(
        id varchar, tenant_id varchar, kind varchar, request jsonb, model_version_id varchar,
        created_at timestamptz, key varchar, fingerprint varchar, expires_at timestamptz,
        queue varchar
    )
), quota AS (
    SELECT i.id, (
        SELECT count(*) FROM (
            SELECT 1 FROM jobs j
            WHERE j.tenant_id = i.tenant_id AND j.status = 'queued'
            LIMIT %(max_queued)s::integer
        ) AS q
    ) AS queued
    FROM input i
), allowed AS (
    SELECT i.* FROM input i JOIN quota USING (id)
    WHERE %(max_queued)s::integer = 0 OR quota.queued < %(max_queued)s::integer
), claimed AS (
    INSERT INTO idempotency_keys (tenant_id, "key", fingerprint, job_id, created_at, expires_at)
    SELECT tenant_id, key, fingerprint, id, created_at, expires_at
    FROM allowed WHERE key IS NOT NULL
    ON CONFLICT (tenant_id, "key") DO NOTHING
    RETURNING job_id AS id
), gate AS (
    SELECT id FROM claimed UNION ALL SELECT id FROM allowed WHERE key IS NULL
), job AS (
    INSERT INTO jobs (id, tenant_id, kind, status, request, model_version_id, attempts,
                      preemptions, created_at)
    SELECT a.id, a.tenant_id, a.kind, 'queued', a.request, a.model_version_id, 0, 0,
           a.created_at
    FROM allowed a JOIN gate USING (id)
    RETURNING id
), event AS (
    INSERT INTO job_events (job_id, status, type, created_at)
    SELECT i.id, 'queued', 'queued', i.created_at FROM input i JOIN job USING (id)
), outbox AS (
    INSERT INTO outbox (job_id, task_name, queue, created_at)
    SELECT i.id, %(task_name)s, i.queue, i.created_at FROM input i JOIN job USING (id)
)
SELECT q.id, q.queued, job.id IS NOT NULL AS written
FROM quota q LEFT JOIN job USING (id)
"""

COLUMNS = (
    "id",
    "tenant_id",
    "kind",
    "request",
    "model_version_id",
    "created_at",
    "key",
    "fingerprint",
    "expires_at",
    "queue",
)


@dataclass(frozen=True)
class Row:
    """One job's values; ``key`` None without a key."""

    id: str
    tenant_id: str
    kind: str
    request: dict[str, Any]
    model_version_id: str | None
    created_at: datetime
    key: str | None
    fingerprint: str | None
    expires_at: datetime | None
    queue: str


def params(rows: list[Row], *, max_queued: int, task_name: str) -> dict[str, Any]:
    def as_json(row: Row) -> dict[str, Any]:
        out = {c: getattr(row, c) for c in COLUMNS}
        out["created_at"] = row.created_at.isoformat()
        out["expires_at"] = row.expires_at.isoformat() if row.expires_at else None
        return out

    rows_json = json.dumps([as_json(r) for r in rows])
    return {"rows": rows_json, "max_queued": max_queued, "task_name": task_name}


Outcome = tuple[int, bool]  # (the tenant's queued jobs counted up to the cap, written)


def answers(result_rows: Any) -> dict[str, Outcome]:
    return {str(job_id): (int(queued), bool(written)) for job_id, queued, written in result_rows}


@dataclass(eq=False)
class _Waiting:
    row: Row
    woken: threading.Event = field(default_factory=threading.Event)
    lead: bool = False
    outcome: Outcome | None = None
    error: BaseException | None = None


class GroupInsert:
    """The statements of one API process to one database, one in flight at a time."""

    def __init__(
        self, engine: Engine, *, max_queued: int, task_name: str, max_batch: int = 64
    ) -> None:
        self.engine, self.max_queued, self.task_name = engine, max_queued, task_name
        self.max_batch = max_batch
        self._lock = threading.Lock()
        self._queue: list[_Waiting] = []
        self._busy = False

    def insert(self, row: Row) -> Outcome:
        """Write ``row`` (committed when this returns); raises what its statement raised."""
        me = _Waiting(row)
        with self._lock:
            self._queue.append(me)
            me.lead = not self._busy
            self._busy = True
        if not me.lead:
            me.woken.wait()  # answered, or made the leader of the next statement
        if me.lead:
            self._lead()
        if me.error is not None:
            raise me.error
        assert me.outcome is not None  # noqa: S101 - set by the statement that carried it
        return me.outcome

    def _lead(self) -> None:
        with self._lock:
            batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
        try:
            self._send(batch)
        finally:
            with self._lock:
                if self._queue:
                    self._queue[0].lead = True  # the next statement is the next one's to send
                    self._queue[0].woken.set()
                else:
                    self._busy = False
            for waiting in batch:
                waiting.woken.set()

    def _send(self, batch: list[_Waiting]) -> None:
        try:
            outcomes = self._statement([w.row for w in batch])
        except (OperationalError, InterfaceError) as exc:
            for waiting in batch:  # the database is unreachable: every row's answer
                waiting.error = exc
            return
        except DBAPIError as exc:
            if len(batch) == 1:
                batch[0].error = exc
            else:  # a row Postgres refuses must not fail the others: each alone
                for waiting in batch:
                    self._send([waiting])
            return
        except BaseException as exc:  # noqa: BLE001 - handed to every waiting request
            for waiting in batch:
                waiting.error = exc
            return
        for waiting in batch:
            waiting.outcome = outcomes[waiting.row.id]

    def _statement(self, rows: list[Row]) -> dict[str, Outcome]:
        values = params(rows, max_queued=self.max_queued, task_name=self.task_name)
        with self.engine.connect() as conn:
            return answers(conn.exec_driver_sql(SQL, values).all())


_instances: dict[tuple[Engine, int, str], GroupInsert] = {}
_instances_lock = threading.Lock()


def for_engine(engine: Engine, *, max_queued: int, task_name: str) -> GroupInsert:
    """The process's GroupInsert for this (autocommit) engine and cap."""
    key = (engine, max_queued, task_name)
    with _instances_lock:
        if key not in _instances:
            _instances[key] = GroupInsert(engine, max_queued=max_queued, task_name=task_name)
        return _instances[key]
