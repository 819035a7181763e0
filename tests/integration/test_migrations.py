"""Alembic upgrades and downgrades cleanly on Postgres."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import create_engine, inspect

from core.migrate import downgrade, upgrade
from core.orm import Base
from tests.integration.conftest import create_database, drop_database

pytestmark = pytest.mark.integration


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade_round_trip():
    name = f"synthgen_mig_{uuid.uuid4().hex[:8]}"
    url = create_database(name)
    try:
        upgrade(url)
        assert _tables(url) == set(Base.metadata.tables) | {"alembic_version"}
        downgrade(url, "base")
        assert _tables(url) == {"alembic_version"}
        upgrade(url)
        assert _tables(url) == set(Base.metadata.tables) | {"alembic_version"}
    finally:
        drop_database(name)
