"""Job events under load, on Postgres + Redis with real workers (as `make test` has them).

1. Webhook latency: time from a job's terminal state change (its ``completed_at``) to the
   receiver's 200, p50/p99 over N small generate jobs, each with a webhook.
2. Streams: submission throughput, API CPU and RSS with no event streams open, then with
   S concurrent SSE clients watching running jobs, on the same single API process.

    .venv/bin/python bench/events.py [--jobs 200] [--streams 500] [--seconds 10]

Prints figures side by side; BENCHMARKS.md records them with the size used.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from bench import stack, wrk  # noqa: E402
from bench.stack import start  # noqa: E402
from bench.submission import BODY  # noqa: E402
from core.db import session_scope  # noqa: E402
from core.jobs import events  # noqa: E402
from core.jobs.orm import JobEvent  # noqa: E402
from tests.integration.conftest import TINY_DDPM  # noqa: E402

TERMINAL = {"succeeded", "failed", "canceled"}


class Receiver:
    """Records when each webhook arrived (wall clock) with the job's ``completed_at``."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.done = threading.Condition()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["content-length"]))
                arrived = time.time()
                completed = datetime.fromisoformat(json.loads(body)["completed_at"])
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()
                with outer.done:
                    outer.latencies.append(arrived - completed.timestamp())
                    outer.done.notify_all()

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, n: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        with self.done:
            while len(self.latencies) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{len(self.latencies)} of {n} webhooks arrived")
                self.done.wait(left)


def worker(env: dict[str, str], queue: str, log: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "celery", "-A", "worker.celery_app", "worker", "-Q", queue]
    cmd += ["--concurrency", "1", "--without-gossip", "--without-mingle", "-n", f"{queue}@%h"]
    return subprocess.Popen(  # noqa: S603
        cmd, cwd=ROOT, env={**os.environ, **env}, stdout=log.open("w"), stderr=subprocess.STDOUT
    )


def wait_job(http: httpx.Client, job_id: str, until: set[str], timeout_s: float = 600) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        job = http.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in until:
            return job
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} still {job['status']}")
        time.sleep(0.2)


def proc_sample(pid: int) -> tuple[float, float]:
    """(CPU seconds used so far, RSS MiB) of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    rss_kb = next(
        int(line.split()[1])
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if line.startswith("VmRSS:")
    )
    return cpu, rss_kb / 1024


def stream_clients(
    port: int,
    key: str,
    last_ids: dict[str, str],
    n: int,
    ready: Any,
    stop: Any,
    counter: Any,
) -> None:
    """A process of its own holding ``n`` raw SSE connections spread over the jobs of
    ``last_ids``, each resuming after that event (live events only, no backlog): sets
    ``ready`` once every stream has had a live event and counts ``data:`` lines in
    ``counter`` until ``stop`` is set. (In the submitting process it would compete for
    that process's GIL and slow the submissions down on its own account.)"""
    job_ids = list(last_ids)
    started = 0

    async def one(job_id: str) -> None:
        nonlocal started
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            f"GET /v1/jobs/{job_id}/events HTTP/1.1\r\nHost: bench\r\n"
            f"Authorization: Bearer {key}\r\nAccept: text/event-stream\r\n"
            f"Last-Event-ID: {last_ids[job_id]}\r\n\r\n".encode()
        )
        status = await reader.readline()
        assert b" 200 " in status, status
        first = True
        while line := await reader.readline():
            if line.startswith(b"data:"):
                counter.value += 1
                if first:
                    first, started = False, started + 1
                    if started == n:
                        ready.set()

    async def run() -> None:
        clients = asyncio.gather(*(one(job_ids[i % len(job_ids)]) for i in range(n)))
        while not stop.is_set():
            await asyncio.sleep(0.2)
        clients.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await clients

    asyncio.run(run())


def streams_phase(
    url: str, key: str, pid: int, job_ids: list[str], database_url: str, args: argparse.Namespace
) -> dict[str, float]:
    """Throughput, CPU and RSS while ``args.streams`` SSE clients are connected."""
    with session_scope(database_url) as session:
        last_ids = {
            job_id: events.public_id(
                session.scalar(select(func.max(JobEvent.id)).where(JobEvent.job_id == job_id))
            )
            for job_id in job_ids
        }
    spawn = multiprocessing.get_context("spawn")
    ready, stop, counter = spawn.Event(), spawn.Event(), spawn.Value("l", 0, lock=False)
    port = int(url.rsplit(":", 1)[1])
    clients = spawn.Process(
        target=stream_clients, args=(port, key, last_ids, args.streams, ready, stop, counter)
    )
    clients.start()
    try:
        if not ready.wait(timeout=180):
            raise TimeoutError("the SSE clients did not all get their first event")
        before = counter.value
        cpu0, _ = proc_sample(pid)
        t0 = time.perf_counter()
        load = measure(url, key, args.clients, args.seconds)
        wall = time.perf_counter() - t0
        cpu1, rss = proc_sample(pid)
        msgs = counter.value - before
    finally:
        stop.set()
        clients.join(timeout=30)
    return {
        **load,
        "cpu_pct": 100 * (cpu1 - cpu0) / wall,
        "rss_mib": rss,
        "sse_msgs_per_s": msgs / wall,
    }


def measure(url: str, key: str, clients: int, seconds: float) -> dict[str, float]:
    """Submissions by ``clients`` keep-alive connections (wrk), each with a fresh key."""
    auth = {"Authorization": f"Bearer {key}"}
    common = {"method": "POST", "path": "/v1/jobs", "body": json.dumps(BODY), "keys": True}
    wrk.run(url, **common, headers=auth, connections=clients, seconds=min(2.0, seconds))
    return wrk.run(url, **common, headers=auth, connections=clients, seconds=seconds)


def quiet_phase(url: str, key: str, pid: int, args: argparse.Namespace) -> dict[str, float]:
    cpu0, _ = proc_sample(pid)
    t0 = time.perf_counter()
    load = measure(url, key, args.clients, args.seconds)
    wall = time.perf_counter() - t0
    cpu1, rss = proc_sample(pid)
    return {**load, "cpu_pct": 100 * (cpu1 - cpu0) / wall, "rss_mib": rss}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--streams", type=int, default=500)
    parser.add_argument("--watched", type=int, default=1, help="training jobs the streams watch")
    parser.add_argument("--clients", type=int, default=16, help="concurrent submitters")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=2, help="no streams / streams pairs")
    args = parser.parse_args()

    with stack.throwaway() as t:
        lat, jobs_wall, rounds = measure_all(t, args)
    report(lat, jobs_wall, rounds, args)


def measure_all(
    t: stack.Throwaway, args: argparse.Namespace
) -> tuple[list[float], float, list[tuple[str, dict[str, float]]]]:
    key, database_url, prefix = t.key, t.database_url, t.prefix
    env = {
        **t.env(),
        # A load test: one tenant submits far past the abuse limits (0 turns them off).
        "SYNTHGEN_MAX_QUEUED_JOBS": "0",
        "SYNTHGEN_RATE_LIMIT_PER_S": "0",
        "SYNTHGEN_WEBHOOK_ALLOW_HTTP": "true",
        "SYNTHGEN_WEBHOOK_ALLOWED_CIDRS": "127.0.0.0/8",
        "OMP_NUM_THREADS": "1",
    }
    receiver = Receiver()
    logs = t.files
    procs = [
        worker(env, f"{prefix}gpu", logs / "gpu.log"),
        worker(env, f"{prefix}cpu", logs / "cpu.log"),
    ]
    api_cmd = [sys.executable, "-m", "uvicorn", "api.main:app", "--workers", "1"]
    api, url = start([*api_cmd, "--log-level", "warning", "--no-access-log"], env, "/healthz")
    procs.append(api)
    pid = api.pid  # one uvicorn process: what the streams and the submissions share
    http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30)
    try:
        train = {
            "kind": "train",
            "engine": "ddpm",
            "dataset": "shapes",
            "model_name": "bench",
            "config": TINY_DDPM,
        }
        job = http.post("/v1/jobs", json=train).json()
        assert wait_job(http, job["id"], TERMINAL)["status"] == "succeeded"

        hooked = {
            "kind": "generate",
            "model": "bench",
            "count": 1,
            "output_format": "npz",
            "config": {"sampler": "ddim", "steps": 1},
            "webhook": receiver.url,
            "webhook_events_filter": ["completed"],
        }
        t0 = time.perf_counter()
        for _ in range(args.jobs):
            assert http.post("/v1/jobs", json=hooked).status_code == 201
        receiver.wait(args.jobs, timeout_s=60 + 5 * args.jobs)
        jobs_wall = time.perf_counter() - t0
        lat = sorted(receiver.latencies)

        long = {**train, "model_name": "watched", "config": {**TINY_DDPM, "max_steps": 10**7}}
        watched = [http.post("/v1/jobs", json=long).json()["id"] for _ in range(args.watched)]
        for job_id in watched:
            wait_job(http, job_id, {"running"})
        rounds = []  # alternated, so that load from outside the bench hits both alike
        for _ in range(args.rounds):
            rounds.append(("no streams", quiet_phase(url, key, pid, args)))
            rounds.append(
                (
                    f"{args.streams} SSE streams",
                    streams_phase(url, key, pid, watched, database_url, args),
                )
            )
    finally:
        http.close()
        for proc in procs:  # Celery's cold shutdown: the training job need not finish
            proc.send_signal(signal.SIGQUIT if proc is not api else signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
    return lat, jobs_wall, rounds


def report(
    lat: list[float],
    jobs_wall: float,
    rounds: list[tuple[str, dict[str, float]]],
    args: argparse.Namespace,
) -> None:
    print(
        f"\nwebhook latency over {len(lat)} generate jobs ({jobs_wall:.0f} s, {os.cpu_count()} "
        "cores, one gpu-queue and one cpu-queue worker)"
    )
    print(
        f"  completed_at -> receiver: p50 {1000 * statistics.median(lat):.0f} ms, "
        f"p99 {1000 * lat[int(0.99 * (len(lat) - 1))]:.0f} ms, max {1000 * lat[-1]:.0f} ms"
    )
    print(
        f"\nsubmissions ({args.clients} clients, {args.seconds:.0f} s) on one API process, "
        f"{args.watched} training jobs running"
    )
    print(f"{'':<28} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'API CPU %':>10} {'RSS MiB':>8}")
    for name, r in rounds:
        print(
            f"{name:<28} {r['rps']:8.1f} {r['p50_ms']:8.1f} {r['p99_ms']:8.1f} "
            f"{r['cpu_pct']:10.0f} {r['rss_mib']:8.0f}"
        )
    quiet = statistics.median(r["rps"] for name, r in rounds if name == "no streams")
    busy = [r for name, r in rounds if name != "no streams"]
    print(
        f"ratio streams/no streams throughput (medians): "
        f"{statistics.median(r['rps'] for r in busy) / quiet:.2f}; SSE messages/s delivered "
        f"during the load: {statistics.median(r['sse_msgs_per_s'] for r in busy):.0f}"
    )


if __name__ == "__main__":
    main()
