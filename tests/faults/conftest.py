"""The fault-injection stack: a private Postgres and Redis (so a fault never touches the
servers other tests share), the session's SeaweedFS, and the project's real processes —
Celery workers, beat and the API under uvicorn — started, killed and restarted by tests.

Timings are shortened so faults resolve in seconds: heartbeats every second, a worker
counted dead after 6 s without one, lost messages re-sent after 3 s, the reconciler
every 2 s.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, select, text, update

from core.config import Settings
from core.db import session_factory, session_scope
from core.jobs.orm import Job, JobEvent
from core.jobs.states import JobStatus
from core.migrate import upgrade
from core.storage import from_settings as storage_from_settings
from core.tenants import service as tenants
from tests.servers import (
    Postgres,
    Process,
    Redis,
    SeaweedFS,
    celery,
    free_port,
    settings_env,
    wait_for,
    wait_http,
)

TERMINAL = {"succeeded", "failed", "canceled"}
# A DDPM that trains in milliseconds a step on one CPU thread and samples in 10 steps.
FAULT_DDPM: dict[str, Any] = {
    "batch_size": 8,
    "image_size": 8,
    "base_channels": 8,
    "num_train_timesteps": 10,
    "seed": 0,
}


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    server = Postgres()
    server.start()
    yield server
    server.destroy()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[Redis]:
    server = Redis()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def fault_settings(
    postgres: Postgres, redis_server: Redis, seaweedfs: SeaweedFS, tmp_path_factory: Any
) -> Settings:
    engine = create_engine(postgres.url(), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("CREATE DATABASE synthgen"))
    engine.dispose()
    run = uuid.uuid4().hex[:8]
    bucket = f"synthgen-faults-{run}"
    seaweedfs.create_bucket(bucket)
    settings = Settings(
        database_url=postgres.url("synthgen"),
        broker_url=redis_server.url,
        storage_url=f"s3://{bucket}/data",
        s3_endpoint_url=seaweedfs.endpoint,
        aws_access_key_id=seaweedfs.access_key,
        aws_secret_access_key=seaweedfs.secret_key,
        queue_prefix=f"faults-{run}-",
        work_dir=tmp_path_factory.mktemp("work"),
        heartbeat_interval_s=1.0,
        heartbeat_timeout_s=6.0,
        requeue_after_s=3.0,
        reconcile_interval_s=2.0,
        shard_size=16,
        storage_max_attempts=2,
        storage_connect_timeout_s=2.0,
        rate_limit_per_s=1000.0,
        rate_limit_burst=1000,
    )
    upgrade(settings.database_url)
    return settings


class Stack:
    """What a fault test drives: the settings, the servers, and the processes it starts
    (all stopped when the test ends)."""

    def __init__(
        self,
        settings: Settings,
        postgres: Postgres,
        redis: Redis,
        seaweedfs: SeaweedFS,
        logs: Path,
        api_url: str,
    ) -> None:
        self.settings, self.postgres, self.redis, self.seaweedfs = (
            settings,
            postgres,
            redis,
            seaweedfs,
        )
        self.logs, self.api_url = logs, api_url
        self.processes: list[Process] = []
        self.storage = storage_from_settings(settings)

    def start(self, name: str, args: list[str], **overrides: Any) -> Process:
        log = self.logs / f"{name}-{uuid.uuid4().hex[:6]}.log"
        proc = Process(args, settings_env(self.settings, **overrides), log)
        self.processes.append(proc)
        return proc

    def worker(self, **overrides: Any) -> Process:
        queues = f"{self.settings.queue_prefix}gpu,{self.settings.queue_prefix}cpu"
        args = ["worker", "-Q", queues, "--concurrency", "1", "--loglevel", "INFO"]
        args += ["--without-gossip", "--without-mingle", "-n", f"f-{uuid.uuid4().hex[:6]}@%h"]
        proc = self.start("worker", celery(args), **overrides)
        proc.wait_for_log("ready.")
        return proc

    def beat(self) -> Process:
        schedule = self.logs / f"beat-{uuid.uuid4().hex[:6]}"
        proc = self.start("beat", celery(["beat", "-s", str(schedule), "--loglevel", "INFO"]))
        proc.wait_for_log("beat: Starting")
        return proc

    def tenant(self) -> httpx.Client:
        """An HTTP client of the API as a new tenant."""
        with session_scope(self.settings.database_url) as session:
            key = tenants.create_key(session=session, tenant_name=f"t-{uuid.uuid4().hex[:8]}")
        return httpx.Client(
            base_url=self.api_url, headers={"Authorization": f"Bearer {key}"}, timeout=30
        )

    def job(self, job_id: str) -> Job:
        with session_scope(self.settings.database_url) as session:
            job = session.get(Job, job_id)
            assert job is not None
            session.expunge(job)
            return job

    def events(self, job_id: str) -> list[str]:
        """The job's status after each of its state changes, in order (each run shows as
        "running"; progress and output events are left out)."""
        changes = ["queued", "start", "completed"]
        with session_scope(self.settings.database_url) as session:
            return list(
                session.scalars(
                    select(JobEvent.status)
                    .where(JobEvent.job_id == job_id, JobEvent.type.in_(changes))
                    .order_by(JobEvent.id)
                )
            )

    def wait_job(self, job_id: str, until: set[str], timeout_s: float = 180) -> Job:
        return wait_for(  # type: ignore[no-any-return]
            lambda: (job := self.job(job_id)).status in until and job,
            timeout_s,
            f"job {job_id} reaching {sorted(until)}",
            interval_s=0.2,
        )

    def wait_step(self, job_id: str, step: int, timeout_s: float = 120) -> None:
        def reached() -> bool:
            job = self.job(job_id)
            assert job.status not in TERMINAL, f"job ended first: {job.status} {job.error}"
            return job.status == "running" and (job.progress or {}).get("step", 0) >= step

        wait_for(reached, timeout_s, f"job {job_id} reaching step {step}", interval_s=0.05)

    def restart_postgres(self, until: Callable[[], bool]) -> None:
        """Stop Postgres (fast shutdown: sessions are cut), wait until ``until()`` has
        seen the outage, start it again."""
        self.postgres.stop("fast")
        try:
            wait_for(until, 30, "the outage being seen")
        finally:  # a test that fails here must not leave the rest of the suite without it
            self.postgres.start()
        # The pooled connections of this test process died with the server.
        session_factory(self.settings.database_url).kw["bind"].dispose()

    def read(self, key: str) -> bytes:
        return self.storage.get_bytes(key)

    def stop_all(self) -> None:
        for proc in reversed(self.processes):
            proc.stop()
        # Nothing a test left queued or running may run in the next one.
        with session_scope(self.settings.database_url) as session:
            session.execute(
                update(Job)
                .where(Job.status.in_([JobStatus.queued, JobStatus.running]))
                .values(status=JobStatus.canceled)
            )


@pytest.fixture(scope="session")
def api_url(fault_settings: Settings, tmp_path_factory: Any) -> Iterator[str]:
    """The API under uvicorn, for the whole suite: it must ride out every fault."""
    port = free_port()
    log = tmp_path_factory.mktemp("api") / "api.log"
    args = [sys.executable, "-m", "uvicorn", "api.main:app", "--port", str(port)]
    proc = Process(args, settings_env(fault_settings), log)
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/healthz")
    yield url
    proc.stop()


@pytest.fixture()
def stack(
    fault_settings: Settings,
    postgres: Postgres,
    redis_server: Redis,
    seaweedfs: SeaweedFS,
    api_url: str,
    tmp_path: Path,
) -> Iterator[Stack]:
    if redis_server.proc is None:
        redis_server.start()
    stack = Stack(fault_settings, postgres, redis_server, seaweedfs, tmp_path, api_url)
    yield stack
    stack.stop_all()


def safetensors_of(stack: Stack, job_id: str) -> bytes:
    return stack.read(f"jobs/{job_id}/model/model.safetensors")
