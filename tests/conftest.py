"""Servers shared by every test directory that asks for them (started on first use)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers import SeaweedFS


@pytest.fixture(scope="session")
def seaweedfs() -> Iterator[SeaweedFS]:
    """One real S3 server (SeaweedFS) for the whole run: it takes seconds to start."""
    server = SeaweedFS()
    server.start()
    yield server
    server.destroy()
