"""POST /v1/jobs throughput and latency at N concurrent clients, side by side with a bare
FastAPI endpoint that only calls Celery's apply_async on the same Redis, in the same run.

    .venv/bin/python bench/submission.py [--clients 32] [--seconds 10] [--workers 2]

Needs Postgres and Redis on 127.0.0.1 (as `make test`). Prints submissions/s, p50/p99 and
the ratio ours/baseline. Messages go to throwaway queues that are deleted afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.db import session_scope  # noqa: E402
from core.migrate import upgrade  # noqa: E402
from core.tenants import service as tenants  # noqa: E402
from tests.integration.conftest import create_database, drop_database  # noqa: E402

BROKER = "redis://127.0.0.1:6379/0"
BODY = {
    "kind": "train",
    "engine": "ddpm",
    "dataset": "digits",
    "model_name": "bench",
    "config": {"max_steps": 100},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(app: str, env: dict[str, str], workers: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(  # noqa: S603
        [
            sys.executable,
            "-m",
            "uvicorn",
            app,
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=ROOT,
        env={**os.environ, **env},
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(f"{url}/docs", timeout=1)
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{app} did not start")


async def one_client(
    port: int, path: str, headers: dict[str, str], deadline: float, latencies: list[float]
) -> int:
    """One keep-alive HTTP/1.1 connection posting BODY until ``deadline``; returns errors.

    A few lines of asyncio rather than httpx: on 2 shared cores httpx's AsyncClient spends
    more CPU per request than the servers under test and caps both near 100 req/s, so it
    measured itself. This client costs a few percent of a core at 1,000 req/s.
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    payload = json.dumps(BODY).encode()
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    request = (
        f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n{extra}\r\n"
    ).encode() + payload
    errors = 0
    try:
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            writer.write(request)
            status = int((await reader.readline()).split()[1])
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            body = await reader.readexactly(length)
            latencies.append(time.perf_counter() - t0)
            if status != 201:
                errors += 1
                if errors == 1:
                    print(status, body[:300].decode(errors="replace"))
    finally:
        writer.close()
    return errors


async def load(
    url: str, path: str, headers: dict[str, str], clients: int, seconds: float
) -> list[float]:
    latencies: list[float] = []
    port = int(url.rsplit(":", 1)[1])
    deadline = time.perf_counter() + seconds
    errors = await asyncio.gather(
        *(one_client(port, path, headers, deadline, latencies) for _ in range(clients))
    )
    if sum(errors):
        raise RuntimeError(f"{sum(errors)} requests failed")
    return latencies


def measure(
    url: str, path: str, headers: dict[str, str], clients: int, seconds: float
) -> dict[str, float]:
    asyncio.run(load(url, path, headers, clients, min(2.0, seconds)))  # warm-up
    t0 = time.perf_counter()
    lat = asyncio.run(load(url, path, headers, clients, seconds))
    wall = time.perf_counter() - t0
    lat.sort()
    return {
        "rps": len(lat) / wall,
        "p50_ms": 1000 * statistics.median(lat),
        "p99_ms": 1000 * lat[int(0.99 * (len(lat) - 1))],
        "n": len(lat),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    args = parser.parse_args()

    run = uuid.uuid4().hex[:8]
    db = f"synthgen_bench_{run}"
    database_url = create_database(db)
    upgrade(database_url)
    with session_scope(database_url) as session:
        key = tenants.create_key(session=session, tenant_name="bench")
    prefix = f"bench-{run}-"
    ours_env = {
        "SYNTHGEN_DATABASE_URL": database_url,
        "SYNTHGEN_BROKER_URL": BROKER,
        "SYNTHGEN_STORAGE_URL": f"file:///tmp/synthgen-bench-{run}",
        "SYNTHGEN_QUEUE_PREFIX": prefix,
        # A load test: one tenant submits far past the abuse limits (0 turns them off).
        "SYNTHGEN_MAX_QUEUED_JOBS": "0",
        "SYNTHGEN_RATE_LIMIT_PER_S": "0",
    }
    base_env = {"BENCH_BROKER_URL": BROKER, "BENCH_QUEUE": f"{prefix}baseline"}
    results = {}
    try:
        for name, app, env, path, headers in (
            (
                "baseline (FastAPI + apply_async)",
                "bench.baseline_submit_app:app",
                base_env,
                "/jobs",
                {},
            ),
            (
                "synthgen POST /v1/jobs",
                "api.main:app",
                ours_env,
                "/v1/jobs",
                {"Authorization": f"Bearer {key}"},
            ),
        ):
            proc, url = start(app, env, args.workers)
            try:
                results[name] = measure(url, path, headers, args.clients, args.seconds)
            finally:
                proc.terminate()
                proc.wait(timeout=10)
    finally:
        r = redis.Redis.from_url(BROKER)
        for k in r.scan_iter(f"{prefix}*"):
            r.delete(k)
        drop_database(db)

    print(
        f"\n{args.clients} concurrent clients, {args.seconds:.0f} s, "
        f"{args.workers} uvicorn workers, {os.cpu_count()} cores"
    )
    print(f"{'server':<36} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'n':>7}")
    for name, r in results.items():
        print(f"{name:<36} {r['rps']:8.1f} {r['p50_ms']:8.1f} {r['p99_ms']:8.1f} {r['n']:7.0f}")
    ours, base = results["synthgen POST /v1/jobs"], results["baseline (FastAPI + apply_async)"]
    print(
        f"ratio ours/baseline throughput: {ours['rps'] / base['rps']:.2f}  "
        f"(p99 {ours['p99_ms'] / base['p99_ms']:.2f}x)"
    )


if __name__ == "__main__":
    main()
