"""What the benches that run the API against the real services share: a throwaway
database with one tenant's key and a queue prefix (both gone afterwards), and servers
started on a free port and stopped.

Needs Postgres and Redis on 127.0.0.1, as `make test` has them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.db import session_scope  # noqa: E402
from core.tenants import service as tenants  # noqa: E402
from tests.integration.conftest import migrated_database  # noqa: E402
from tests.servers import free_port, wait_http  # noqa: E402

BROKER = "redis://127.0.0.1:6379/0"


@dataclass(frozen=True)
class Throwaway:
    run: str  # a fresh hex id, in every name below
    database_url: str
    key: str  # the bench tenant's API key
    prefix: str  # queue prefix: every Redis key of the run starts with it
    files: Path  # storage and work directory

    def env(self) -> dict[str, str]:
        """The API's and workers' settings for this run's database, queues and files."""
        return {
            "SYNTHGEN_DATABASE_URL": self.database_url,
            "SYNTHGEN_BROKER_URL": BROKER,
            "SYNTHGEN_STORAGE_URL": f"file://{self.files}",
            "SYNTHGEN_WORK_DIR": str(self.files / "work"),
            "SYNTHGEN_QUEUE_PREFIX": self.prefix,
        }


@contextmanager
def throwaway(tenant_name: str = "bench") -> Iterator[Throwaway]:
    """A migrated database of its own with one tenant and key; on exit the database and
    the run's Redis keys are deleted (the files stay, for a look at the logs)."""
    run = uuid.uuid4().hex[:8]
    try:
        with migrated_database("synthgen_bench") as database_url:
            with session_scope(database_url) as session:
                key = tenants.create_key(session=session, tenant_name=tenant_name)
            files = Path(f"/tmp/synthgen-bench-{run}")
            files.mkdir(parents=True, exist_ok=True)
            yield Throwaway(run, database_url, key, f"bench-{run}-", files)
    finally:
        r = redis.Redis.from_url(BROKER)
        # The run's queues, and the bindings kombu declares for them on a send_task.
        for pattern in (f"bench-{run}-*", f"_kombu.binding*.bench-{run}-*"):
            for k in r.scan_iter(pattern):
                r.delete(k)


def start(
    command: list[str], env: dict[str, str], ready: str
) -> tuple[subprocess.Popen[bytes], str]:
    """Start a server ``command`` (given ``--port``) and wait until ``ready`` answers."""
    port = free_port()
    proc = subprocess.Popen(  # noqa: S603 - our own command
        [*command, "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,  # ours logs a JSON access line per request, as deployed
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}{ready}", timeout_s=30)
    except TimeoutError:
        proc.kill()
        raise
    return proc, url


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
