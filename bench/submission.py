"""POST /v1/jobs beside a bare FastAPI endpoint that only publishes a Celery message to the
same Redis, in the same run; then GET /v1/jobs/{id} and the list with 100,000 jobs.

    .venv/bin/python bench/submission.py [--connections 32] [--seconds 10] [--rounds 3]

Needs Postgres and Redis on 127.0.0.1 (as `make test`) and Debian's `wrk` (the load
generator; the bench says so and stops when it is missing). Both servers run as operators
run them: ours is `python -m api.serve` with SYNTHGEN_API_WORKERS processes (default: the
cores), the baseline is uvicorn with as many. They stay up side by side and take the load
in alternating rounds (A B, B A, ...), so whatever else loads the machine hits both alike;
each round's ratio pairs the two runs next to each other. Every POST carries a unique
Idempotency-Key, as the SDK sends one with every submit. Messages go to throwaway queues
and everything runs in a throwaway database, both deleted afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import job_reads, stack, wrk  # noqa: E402
from bench.stack import BROKER, start, stop  # noqa: E402
from core.config import default_api_workers  # noqa: E402

BODY = {
    "kind": "train",
    "engine": "ddpm",
    "dataset": "digits",
    "model_name": "bench",
    "config": {"max_steps": 100},
}
BASELINE, OURS = "baseline (FastAPI + send_task)", "synthgen POST /v1/jobs"


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except OSError:  # gone, or not Linux
        return None


def process_tree(root: int) -> set[int]:
    """``root`` and its descendants (uvicorn's supervisor and its worker processes)."""
    parents = {
        int(p): int(st[1]) for p in os.listdir("/proc") if p.isdigit() if (st := _stat(int(p)))
    }
    tree, grew = {root}, True
    while grew:
        more = {p for p, parent in parents.items() if parent in tree} - tree
        tree |= more
        grew = bool(more)
    return tree


def postgres_pids() -> set[int]:
    def name(pid: str) -> str:
        try:
            with open(f"/proc/{pid}/comm") as f:
                return f.read().strip()
        except OSError:
            return ""

    return {int(p) for p in os.listdir("/proc") if p.isdigit() and name(p) == "postgres"}


def cpu_seconds(pids: set[int]) -> float:
    """User + system CPU time of ``pids`` (Linux /proc; 0 elsewhere)."""
    ticks = os.sysconf("SC_CLK_TCK")
    return sum(int(st[11]) + int(st[12]) for p in pids if (st := _stat(p))) / ticks


def submit_rounds(
    servers: dict[str, tuple[str, str, subprocess.Popen[bytes]]], headers: dict[str, str], args
) -> dict:
    body = json.dumps(BODY)
    run = uuid.uuid4().hex[:8]

    def once(name: str, seconds: float, tag: str) -> dict[str, float]:
        """One wrk run, with the CPU time the server's processes and all of Postgres's
        used per request meanwhile (Postgres's includes whatever else uses it then)."""
        url, path, proc = servers[name]
        server, postgres = process_tree(proc.pid), postgres_pids()
        before = cpu_seconds(server), cpu_seconds(postgres)
        result = wrk.run(
            url,
            method="POST",
            path=path,
            body=body,
            keys=True,
            headers=headers,
            connections=args.connections,
            seconds=seconds,
            run_id=f"{run}-{tag}",
        )
        if result["errors"]:
            raise RuntimeError(f"{name}: {result['errors']:.0f} requests failed")
        result["cpu_server_us"] = 1e6 * (cpu_seconds(server) - before[0]) / result["n"]
        result["cpu_postgres_us"] = 1e6 * (cpu_seconds(postgres) - before[1]) / result["n"]
        return result

    for name in servers:
        once(name, 2, f"warm-{name[:4]}")
    rounds: list[dict[str, dict[str, float]]] = []
    for i in range(args.rounds):
        order = [BASELINE, OURS] if i % 2 == 0 else [OURS, BASELINE]
        loads = {"before": load_average()}
        row = {name: once(name, args.seconds, f"r{i}-{name[:4]}") for name in order}
        loads["after"] = load_average()
        rounds.append({**row, "load": loads})  # type: ignore[dict-item]
        b, o = row[BASELINE], row[OURS]
        print(
            f"round {i + 1}: baseline {b['rps']:.0f}/s p99 {b['p99_ms']:.1f} ms "
            f"(cpu {b['cpu_server_us']:.0f} us/req) | ours {o['rps']:.0f}/s p99 "
            f"{o['p99_ms']:.1f} ms (cpu {o['cpu_server_us']:.0f} + postgres "
            f"{o['cpu_postgres_us']:.0f} us/req) | load {loads['before']} -> {loads['after']}",
            flush=True,
        )
    return {"rounds": rounds}


def summarize(rounds: list[dict]) -> dict[str, float]:
    def med(name: str, key: str) -> float:
        return statistics.median(r[name][key] for r in rounds)

    return {
        "baseline_rps": med(BASELINE, "rps"),
        "baseline_p50_ms": med(BASELINE, "p50_ms"),
        "baseline_p99_ms": med(BASELINE, "p99_ms"),
        "ours_rps": med(OURS, "rps"),
        "ours_p50_ms": med(OURS, "p50_ms"),
        "ours_p99_ms": med(OURS, "p99_ms"),
        "baseline_cpu_us": med(BASELINE, "cpu_server_us"),
        "ours_cpu_us": med(OURS, "cpu_server_us"),
        "ours_postgres_cpu_us": med(OURS, "cpu_postgres_us"),
        "throughput_ratio": statistics.median(r[OURS]["rps"] / r[BASELINE]["rps"] for r in rounds),
        "p99_ratio": statistics.median(r[OURS]["p99_ms"] / r[BASELINE]["p99_ms"] for r in rounds),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per server")
    parser.add_argument("--workers", type=int, default=default_api_workers())
    parser.add_argument("--jobs", type=int, default=100_000, help="rows for the read phase")
    parser.add_argument("--no-reads", action="store_true", help="skip GET/list at --jobs")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args()
    wrk.require()

    with stack.throwaway() as t:
        figures = measure_all(t, args)
    report(figures, args)


def measure_all(t: stack.Throwaway, args: argparse.Namespace) -> dict:
    ours_env = {
        **t.env(),
        "SYNTHGEN_API_WORKERS": str(args.workers),
        # One tenant submits far past the abuse limits: the queued-jobs cap is off, the
        # rate limit is on but out of reach (its bucket is still taken per request).
        "SYNTHGEN_MAX_QUEUED_JOBS": "0",
        "SYNTHGEN_RATE_LIMIT_PER_S": "1000000000",
        "SYNTHGEN_RATE_LIMIT_BURST": "1000000000",
    }
    base_env = {"BENCH_BROKER_URL": BROKER, "BENCH_QUEUE": f"{t.prefix}baseline"}
    base_cmd = [sys.executable, "-m", "uvicorn", "bench.baseline_submit_app:app"]
    base_cmd += ["--workers", str(args.workers), "--log-level", "warning", "--no-access-log"]
    ours_cmd = [sys.executable, "-m", "api.serve", "--host", "127.0.0.1"]
    procs = []
    figures: dict = {}
    try:
        base_proc, base_url = start(base_cmd, base_env, "/docs")
        procs.append(base_proc)
        ours_proc, ours_url = start(ours_cmd, ours_env, "/healthz")
        procs.append(ours_proc)
        servers = {
            BASELINE: (base_url, "/jobs", base_proc),
            OURS: (ours_url, "/v1/jobs", ours_proc),
        }
        auth = {"Authorization": f"Bearer {t.key}"}
        figures["submit"] = submit_rounds(servers, auth, args)
        figures["submit"]["summary"] = summarize(figures["submit"]["rounds"])
        if not args.no_reads:
            figures["reads"] = job_reads.measure(
                t.database_url,
                ours_url,
                auth,
                jobs=args.jobs,
                seconds=args.seconds,
                connections=args.connections,
            )
    finally:
        for proc in procs:
            stop(proc)
    return figures


def report(figures: dict, args: argparse.Namespace) -> None:
    s = figures["submit"]["summary"]
    print(
        f"\n{args.connections} connections (wrk), {args.rounds} alternating rounds of "
        f"{args.seconds:g} s, {args.workers} server processes each, {os.cpu_count()} cores; "
        f"medians of the rounds"
    )
    print(f"{'server':<34} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for name, tag in ((BASELINE, "baseline"), (OURS, "ours")):
        print(
            f"{name:<34} {s[f'{tag}_rps']:8.0f} {s[f'{tag}_p50_ms']:8.1f} {s[f'{tag}_p99_ms']:8.1f}"
        )
    print(
        f"ours/baseline: throughput {s['throughput_ratio']:.2f}x (target >= 0.5), "
        f"p99 {s['p99_ratio']:.2f}x (target <= 1.5)"
    )
    print(
        f"CPU per request: baseline {s['baseline_cpu_us']:.0f} us; ours {s['ours_cpu_us']:.0f} us "
        f"+ Postgres {s['ours_postgres_cpu_us']:.0f} us"
    )
    if "reads" in figures:
        job_reads.report(figures["reads"])
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
