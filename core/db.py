"""Database engine and sessions. Postgres in production, SQLite for the embedded stack."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import JSON, DateTime, Engine, create_engine, event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

# JSONB on Postgres, plain JSON (text) on SQLite.
JSONType = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    type_annotation_map = {
        dict[str, Any]: JSONType,
        list[Any]: JSONType,
        datetime: DateTime(timezone=True),
    }


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every timestamp written here is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def new_id() -> str:
    return str(uuid.uuid4())


def make_engine(database_url: str, **options: Any) -> Engine:
    if database_url.startswith("sqlite"):
        engine = create_engine(
            database_url, connect_args={"check_same_thread": False, "timeout": 30}
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # WAL lets the API read while the worker writes progress.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    # No pool_pre_ping: it costs a round trip per request on the submit hot path. After a
    # database restart the first statement on a dead connection fails, and SQLAlchemy then
    # discards the whole pool, so one request errors instead of every one paying a ping.
    options = {"pool_size": 20, "max_overflow": 20, "pool_recycle": 1800, **options}
    return create_engine(database_url, **options)


@lru_cache(maxsize=8)
def _cached_factory(database_url: str) -> sessionmaker[Session]:
    return sessionmaker(bind=make_engine(database_url), expire_on_commit=False)


def session_factory(database_url: str) -> sessionmaker[Session]:
    return _cached_factory(database_url)


@contextmanager
def session_scope(database_url: str) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    session = session_factory(database_url)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


@lru_cache(maxsize=8)
def autocommit_engine(database_url: str) -> Engine:
    """Postgres connections in autocommit, for work that is one statement: each statement
    is its own transaction, so it costs one round trip (no BEGIN, no COMMIT, no ROLLBACK
    when the connection goes back). Their own small pool beside the main one."""
    if database_url.startswith("sqlite"):
        return session_factory(database_url).kw["bind"]  # type: ignore[no-any-return]
    return make_engine(
        database_url,
        isolation_level="AUTOCOMMIT",
        # No ROLLBACK to send on check-in either: there is never a transaction open.
        skip_autocommit_rollback=True,
        pool_size=10,
        max_overflow=10,
    )


@lru_cache(maxsize=8)
def _read_factory(database_url: str) -> sessionmaker[Session]:
    return sessionmaker(bind=autocommit_engine(database_url), expire_on_commit=False)


@contextmanager
def read_session(database_url: str) -> Iterator[Session]:
    """A session for reads that need no transaction of their own: on Postgres each of its
    statements runs on its own (autocommit), so a one-query read is one round trip and
    nothing is held between statements. Not for writes (each would commit at once)."""
    session = _read_factory(database_url)()
    try:
        yield session
    finally:
        session.close()
