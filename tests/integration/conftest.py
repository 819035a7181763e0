"""Real services for integration tests: a fresh Postgres database migrated with Alembic,
Redis as the broker (queues prefixed per run), a real S3 server (SeaweedFS, one per test
session; tests/conftest.py) and a real Celery worker process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from api.main import create_app
from core.config import Settings
from core.db import session_scope
from core.migrate import upgrade
from core.tenants import service as tenants
from tests.servers import SeaweedFS

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
ROOT = Path(__file__).resolve().parents[2]
TERMINAL = {"succeeded", "failed", "canceled"}
# Small enough that the zip-bomb test's archive (a few kB) expands past it.
DATASET_MAX_EXPANDED = 32 * 2**20


def create_database(name: str) -> str:
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def drop_database(name: str) -> None:
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@contextmanager
def migrated_database(prefix: str) -> Iterator[str]:
    """A database of its own (``prefix`` and a fresh hex id) at the newest migration;
    yields its URL and drops it on exit."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    url = create_database(name)
    try:
        upgrade(url)
        yield url
    finally:
        drop_database(name)


@pytest.fixture(scope="session")
def settings(seaweedfs: SeaweedFS, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    run = uuid.uuid4().hex[:8]
    db_name = f"synthgen_it_{run}"
    database_url = create_database(db_name)
    upgrade(database_url)
    bucket = f"synthgen-it-{run}"
    seaweedfs.create_bucket(bucket)
    yield Settings(
        database_url=database_url,
        broker_url="redis://127.0.0.1:6379/0",
        storage_url=f"s3://{bucket}/data",
        s3_endpoint_url=seaweedfs.endpoint,
        aws_access_key_id=seaweedfs.access_key,
        aws_secret_access_key=seaweedfs.secret_key,
        queue_prefix=f"it-{run}-",
        work_dir=tmp_path_factory.mktemp("work"),
        heartbeat_interval_s=1.0,
        shard_size=64,
        # Webhooks reach the tests' receivers on loopback, and retry on a short schedule.
        webhook_allow_http=True,
        webhook_allowed_cidrs=["127.0.0.0/8"],
        webhook_timeout_s=2.0,
        webhook_retry_base_s=0.2,
        webhook_retry_max_s=1.0,
        webhook_retry_window_s=60.0,
        dataset_max_expanded_bytes=DATASET_MAX_EXPANDED,
        # The worker plays a host with two GPUs (gloo ranks on CPU): it takes gpu.2.
        max_job_gpus=2,
        worker_gpus=2,
    )
    drop_database(db_name)


def settings_env(settings: Settings) -> dict[str, str]:
    env = {
        "SYNTHGEN_DATABASE_URL": settings.database_url,
        "SYNTHGEN_BROKER_URL": settings.broker_url,
        "SYNTHGEN_STORAGE_URL": settings.storage_url,
        "SYNTHGEN_S3_ENDPOINT_URL": settings.s3_endpoint_url or "",
        "AWS_ACCESS_KEY_ID": settings.aws_access_key_id or "",
        "AWS_SECRET_ACCESS_KEY": settings.aws_secret_access_key or "",
        "SYNTHGEN_QUEUE_PREFIX": settings.queue_prefix,
        "SYNTHGEN_WORK_DIR": str(settings.work_dir),
        "SYNTHGEN_HEARTBEAT_INTERVAL_S": str(settings.heartbeat_interval_s),
        "SYNTHGEN_SHARD_SIZE": str(settings.shard_size),
        "SYNTHGEN_WEBHOOK_ALLOW_HTTP": str(settings.webhook_allow_http).lower(),
        "SYNTHGEN_WEBHOOK_ALLOWED_CIDRS": ",".join(map(str, settings.webhook_allowed_cidrs)),
        "SYNTHGEN_WEBHOOK_TIMEOUT_S": str(settings.webhook_timeout_s),
        "SYNTHGEN_WEBHOOK_RETRY_BASE_S": str(settings.webhook_retry_base_s),
        "SYNTHGEN_WEBHOOK_RETRY_MAX_S": str(settings.webhook_retry_max_s),
        "SYNTHGEN_WEBHOOK_RETRY_WINDOW_S": str(settings.webhook_retry_window_s),
        "SYNTHGEN_DATASET_MAX_EXPANDED_BYTES": str(settings.dataset_max_expanded_bytes),
        "SYNTHGEN_MAX_JOB_GPUS": str(settings.max_job_gpus),
        "SYNTHGEN_WORKER_GPUS": str(settings.worker_gpus),
    }
    return {**os.environ, **env, "OMP_NUM_THREADS": "1"}


class WorkerLog:
    """A worker's log (JSON lines): what it did, to wait on instead of sleeping and hoping
    it got round to a message meanwhile."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def count(self, text: str) -> int:
        return self.path.read_text().count(text)

    def wait_for(self, text: str, count: int = 1, timeout_s: float = 60) -> None:
        """Until ``text`` has appeared ``count`` times (fails with the log's tail after
        ``timeout_s``: a bound on a hang, not a timing being tested)."""
        deadline = time.monotonic() + timeout_s
        while self.count(text) < count:
            if time.monotonic() > deadline:
                pytest.fail(
                    f"worker never logged {text!r} x{count}:\n{self.path.read_text()[-3000:]}"
                )
            time.sleep(0.1)


@pytest.fixture(scope="session")
def worker(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerLog]:
    """A real Celery worker process consuming this run's gpu and cpu queues; its log."""
    yield from _celery_worker(settings, tmp_path_factory, ["gpu", "cpu"], [])


@pytest.fixture(scope="session")
def preview_worker(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerLog]:
    """A preview worker as deployed: the preview queue only, solo pool (its model cache)."""
    yield from _celery_worker(settings, tmp_path_factory, ["preview"], ["--pool", "solo"])


def _celery_worker(
    settings: Settings,
    tmp_path_factory: pytest.TempPathFactory,
    queue_names: list[str],
    extra: list[str],
) -> Iterator[WorkerLog]:
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    queues = ",".join(f"{settings.queue_prefix}{q}" for q in queue_names)
    with log.open("w") as out:
        proc = subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "worker.celery_app",
                "worker",
                "-Q",
                queues,
                "--concurrency",
                "1",
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
                "-n",
                f"it-{uuid.uuid4().hex[:6]}@%h",
                *extra,
            ],
            cwd=ROOT,
            env=settings_env(settings),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 90
    while "ready." not in log.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"celery worker did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.3)
    yield WorkerLog(log)
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def app_client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


Api = Callable[..., httpx.Response]


class TenantClient:
    """The API as one tenant sees it: every call carries that tenant's bearer key."""

    def __init__(self, client: TestClient, key: str, name: str) -> None:
        self.client = client
        self.key = key
        self.name = name
        self.headers = {"Authorization": f"Bearer {key}"}

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return self.client.request(method, path, headers=headers, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def submit(self, body: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        response = self.post("/v1/jobs", json=body, **kwargs)
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    def wait(
        self, job_id: str, timeout_s: float = 240, until: set[str] | None = None
    ) -> dict[str, Any]:
        until = until or TERMINAL
        deadline = time.monotonic() + timeout_s
        while True:
            job = self.get(f"/v1/jobs/{job_id}").json()
            if job["status"] in until:
                return job  # type: ignore[no-any-return]
            assert time.monotonic() < deadline, f"job stuck in {job['status']}: {job}"
            time.sleep(0.25)


def _tenant_factory(settings: Settings, app_client: TestClient) -> Callable[[], TenantClient]:
    def make() -> TenantClient:
        name = f"tenant-{uuid.uuid4().hex[:8]}"
        with session_scope(settings.database_url) as session:
            key = tenants.create_key(session=session, tenant_name=name)
        return TenantClient(app_client, key, name)

    return make


@pytest.fixture()
def make_tenant(settings: Settings, app_client: TestClient) -> Callable[[], TenantClient]:
    return _tenant_factory(settings, app_client)


@pytest.fixture(scope="module")
def make_tenant_module(settings: Settings, app_client: TestClient) -> Callable[[], TenantClient]:
    return _tenant_factory(settings, app_client)


@pytest.fixture()
def tenant(make_tenant: Callable[[], TenantClient]) -> TenantClient:
    return make_tenant()


TINY_DDPM: dict[str, Any] = {
    "max_steps": 6,
    "batch_size": 16,
    "image_size": 8,
    "base_channels": 16,
    "seed": 0,
}
