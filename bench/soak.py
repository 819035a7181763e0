"""Soak under faults: small jobs submitted at a steady rate while the worker is SIGKILLed
on a schedule and Redis is flushed once; then every job must end, none lost.

    .venv/bin/python bench/soak.py [--jobs 2000] [--seconds 600] [--kill-every 60]

Runs its own Postgres, Redis and SeaweedFS (tests/servers.py), the API under uvicorn, a
worker (restarted after each kill) and beat. The jobs are generate jobs of one image from
a tiny model trained first. Prints, as JSON: jobs lost (not ended 10 minutes after the last
submission), jobs run twice at once (overlapping runs in the event history), p50/p99 time
from submission to a terminal state, the API's error rate, and the kills and flushes done.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, select, text  # noqa: E402

from core.config import Settings  # noqa: E402
from core.db import session_scope  # noqa: E402
from core.jobs.orm import Job, JobEvent  # noqa: E402
from core.migrate import upgrade  # noqa: E402
from core.tenants import service as tenants  # noqa: E402
from tests.faults.conftest import FAULT_DDPM  # noqa: E402
from tests.servers import (  # noqa: E402
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


def start_stack(logs: Path) -> tuple[Settings, Postgres, Redis, SeaweedFS]:
    pg, redis, s3 = Postgres(), Redis(), SeaweedFS()
    for server in (pg, redis, s3):
        server.start()
    engine = create_engine(pg.url(), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("CREATE DATABASE soak"))
    engine.dispose()
    s3.create_bucket("soak")
    settings = Settings(
        database_url=pg.url("soak"), broker_url=redis.url, storage_url="s3://soak/data",
        s3_endpoint_url=s3.endpoint, aws_access_key_id=s3.access_key,
        aws_secret_access_key=s3.secret_key, work_dir=logs / "work", heartbeat_interval_s=1,
        heartbeat_timeout_s=6, requeue_after_s=10, reconcile_interval_s=3,
        max_queued_jobs=100_000, max_running_jobs=0, rate_limit_per_s=10_000,
    )  # fmt: skip
    upgrade(settings.database_url)
    return settings, pg, redis, s3


def run(args: argparse.Namespace) -> dict:
    logs = Path(f"/tmp/synthgen-soak-{uuid.uuid4().hex[:6]}")
    logs.mkdir()
    settings, pg, redis, s3 = start_stack(logs)
    processes: list[Process] = []
    try:
        return soak(args, settings, redis, logs, processes)
    finally:
        for proc in reversed(processes):
            proc.stop()
        redis.stop()
        pg.destroy()
        s3.destroy()


def soak(
    args: argparse.Namespace, settings: Settings, redis: Redis, logs: Path, processes: list
) -> dict:
    env = settings_env(settings)
    port = free_port()
    uvicorn = [sys.executable, "-m", "uvicorn", "api.main:app", "--port", str(port)]
    processes.append(Process(uvicorn, env, logs / "api.log"))
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/healthz")
    queues = f"{settings.queue_prefix}gpu,{settings.queue_prefix}cpu"

    def worker() -> Process:
        name = f"soak-{uuid.uuid4().hex[:6]}"
        proc = Process(
            celery(["worker", "-Q", queues, "--concurrency", "2", "--loglevel", "INFO",
                    "--without-gossip", "--without-mingle", "-n", f"{name}@%h"]),
            env, logs / f"{name}.log",
        )  # fmt: skip
        processes.append(proc)
        proc.wait_for_log("ready.", timeout_s=120)
        return proc

    processes.append(Process(celery(["beat", "-s", str(logs / "beat")]), env, logs / "beat.log"))
    current = worker()
    with session_scope(settings.database_url) as session:
        key = tenants.create_key(session=session, tenant_name="soak")
    client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30)
    train = {"kind": "train", "engine": "ddpm", "dataset": "shapes", "model_name": "soak",
             "config": {**FAULT_DDPM, "max_steps": 2}}  # fmt: skip
    model_job = client.post("/v1/jobs", json=train).json()["id"]
    wait_for(lambda: client.get(f"/v1/jobs/{model_job}").json()["status"] == "succeeded", 300,
             "the soak model")  # fmt: skip

    statuses: list[int] = []
    ids: list[str] = []
    body = {"kind": "generate", "model": "soak", "count": 1, "output_format": "png"}

    def submit() -> None:
        start = time.monotonic()
        for i in range(args.jobs):
            time.sleep(max(0.0, start + i * args.seconds / args.jobs - time.monotonic()))
            try:
                r = client.post("/v1/jobs", json=body)
                statuses.append(r.status_code)
                if r.status_code == 201:
                    ids.append(r.json()["id"])
            except httpx.HTTPError:
                statuses.append(0)

    submitter = threading.Thread(target=submit)
    began = time.monotonic()
    submitter.start()
    kills = flushes = 0
    while submitter.is_alive():
        submitter.join(timeout=args.kill_every)
        if not submitter.is_alive():
            break
        current.signal(9)
        current.proc.wait()
        kills += 1
        if flushes == 0 and time.monotonic() - began > args.seconds / 2:
            redis.cli("FLUSHALL")
            flushes += 1
        current = worker()

    def pending() -> int:
        with session_scope(settings.database_url) as session:
            return len(session.scalars(select(Job.id).where(
                Job.id.in_(ids), Job.status.in_(["queued", "running"]))).all())  # fmt: skip

    try:
        wait_for(lambda: pending() == 0, 600, "every job ending", interval_s=2)
    except TimeoutError:
        pass
    return summarize(settings, ids, statuses, kills, flushes, pending())


def summarize(settings, ids, statuses, kills, flushes, lost) -> dict:  # noqa: ANN001
    with session_scope(settings.database_url) as session:
        rows = session.execute(
            select(Job.id, Job.status, Job.created_at, Job.completed_at, Job.attempts)
            .where(Job.id.in_(ids))
        ).all()  # fmt: skip
        events = session.execute(
            select(JobEvent.job_id, JobEvent.status)
            .where(JobEvent.job_id.in_(ids), JobEvent.type.in_(["queued", "start", "completed"]))
            .order_by(JobEvent.id)
        ).all()  # fmt: skip
    runs: dict[str, list[str]] = {}
    for job_id, status in events:
        runs.setdefault(job_id, []).append(status)
    # Two runs at once would show as a second "running" before the first one ended.
    overlapping = sum(
        any(a == b == "running" for a, b in zip(seq, seq[1:], strict=False))
        for seq in runs.values()
    )
    latencies = sorted(
        (done - created).total_seconds() for _, _, created, done, _ in rows if done is not None
    )
    return {
        "submitted": len(statuses),
        "accepted": len(ids),
        "api_error_rate": round(sum(s != 201 for s in statuses) / max(1, len(statuses)), 4),
        "lost": lost,
        "run_twice_at_once": overlapping,
        "succeeded": sum(r[1] == "succeeded" for r in rows),
        "failed": sum(r[1] == "failed" for r in rows),
        "retried": sum(r[4] > 1 for r in rows),
        "p50_to_terminal_s": round(statistics.median(latencies), 2) if latencies else None,
        "p99_to_terminal_s": round(latencies[int(0.99 * (len(latencies) - 1))], 2)
        if latencies
        else None,
        "worker_kills": kills,
        "redis_flushes": flushes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--kill-every", type=float, default=60)
    print(json.dumps(run(parser.parse_args()), indent=1))


if __name__ == "__main__":
    main()
