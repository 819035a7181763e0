"""The API in-process on the embedded stack (SQLite, the SQLite broker, files on disk) for
unit tests: the settings of a home folder, and a client holding a tenant's key."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from api.main import create_app
from core.config import Settings
from core.db import session_scope
from core.migrate import upgrade
from core.tenants import service as tenants


def settings(home: Path, **overrides: Any) -> Settings:
    """Embedded settings with every file under ``home``; ``overrides`` are Settings fields."""
    return Settings(
        database_url=f"sqlite:///{home}/db.sqlite",
        broker_url=f"sqla+sqlite:///{home}/broker.sqlite",
        storage_url=f"file://{home}/store",
        work_dir=home / "work",
        **overrides,
    )


@contextmanager
def client(config: Settings, tenant: str = "t") -> Iterator[TestClient]:
    """The app on a migrated database, its lifespan run, sending a new tenant's key."""
    upgrade(config.database_url)
    with session_scope(config.database_url) as session:
        key = tenants.create_key(session=session, tenant_name=tenant)
    with TestClient(create_app(config)) as http:
        http.headers["Authorization"] = f"Bearer {key}"
        yield http
