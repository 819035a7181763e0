"""``synthgen jobs …`` and ``synthgen models``: the REST side of the CLI."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from client.cli import output
from client.cli.errors import EXIT_JOB_FAILED, UsageError
from client.sdk import Client

Json = dict[str, Any]


def read_job_body(target: str | None) -> Json:
    """The job body from a file or stdin (``-``), as a JSON object, or a UsageError."""
    if not target:
        raise UsageError("give the job body: a JSON file, or - to read it from stdin")
    source = "stdin" if target == "-" else target
    try:
        text = sys.stdin.read() if target == "-" else Path(target).read_text()
    except OSError as exc:
        raise UsageError(f"cannot read {source}: {exc.strerror or exc}") from exc
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{source} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    if not isinstance(body, dict):
        kind = type(body).__name__
        raise UsageError(f"{source} must hold a JSON object (a job body), not a {kind}")
    return body


def submit(client: Client, args: argparse.Namespace) -> int:
    job = client.submit(read_job_body(args.file), idempotency_key=args.idempotency_key)
    if args.json:
        output.print_json(job)
    else:
        print(f"submitted {job['kind']} job {job['id']} ({job['status']})")
        print(f"follow it with: synthgen jobs wait {job['id']}")
    return 0


def get(client: Client, args: argparse.Namespace) -> int:
    job = client.get(args.id)
    output.print_json(job) if args.json else output.job_summary(job)
    return 0


def list_jobs(client: Client, args: argparse.Namespace) -> int:
    limit = None if args.all else args.limit
    jobs: list[Json] = []
    more = False
    page_size = min(limit or 200, 200)
    for job in client.iter_jobs(status=args.status, kind=args.kind, page_size=page_size):
        if limit is not None and len(jobs) == limit:
            more = True
            break
        jobs.append(job)
    if args.json:
        output.print_json(jobs)
    elif not jobs:
        print("no jobs" + (" match the filters" if args.status or args.kind else ""))
    else:
        output.jobs_table(jobs)
    if more:
        # Said, not silently cut: the listing has more than was shown.
        print(f"(showing the newest {limit}; more exist: pass --all or --limit N)", file=sys.stderr)
    return 0


def cancel(client: Client, args: argparse.Namespace) -> int:
    job = client.cancel(args.id)
    if args.json:
        output.print_json(job)
    else:
        print(f"job {job['id']} is {job['status']}")
    return 0


def wait(client: Client, args: argparse.Namespace) -> int:
    line = output.ProgressLine()
    try:
        job = client.wait(
            args.id,
            poll_s=args.poll,
            timeout_s=args.timeout,
            on_update=None if args.quiet else line,
        )
    finally:
        line.close()
    if args.json:
        output.print_json(job)
    else:
        output.job_summary(job)
    return 0 if job["status"] == "succeeded" else EXIT_JOB_FAILED


def artifacts(client: Client, args: argparse.Namespace) -> int:
    if not args.download:
        items = client.artifacts(args.id)
        if args.json:
            output.print_json(items)
        else:
            output.table(
                ["NAME", "SIZE", "TYPE"],
                [[i["name"], output.human_size(i["size"]), i["content_type"]] for i in items],
            )
            print(f"{len(items)} artifacts", file=sys.stderr)
        return 0
    directory = Path(args.download)
    line = output.ProgressLine()

    def shown(path: Path, done: int, total: int) -> None:
        if not args.quiet and (line.tty or done == total or done % 500 == 0):
            end = "" if line.tty and done < total else "\n"
            print(f"\rdownloaded {done}/{total}: {path.name}", end=end, file=sys.stderr, flush=True)

    saved = client.download_artifacts(args.id, directory, on_file=shown)
    total = sum(p.stat().st_size for p in saved)
    if args.json:
        output.print_json({"directory": str(directory), "files": len(saved), "bytes": total})
    else:
        print(
            f"saved {len(saved)} files ({output.human_size(total)}) to {directory}; "
            "count and sizes match the listing"
        )
    return 0


def models(client: Client, args: argparse.Namespace) -> int:
    if args.name:
        versions = client.versions(args.name)
        if args.json:
            output.print_json(versions)
            return 0
        output.table(
            ["VERSION", "ALIASES", "ENGINE", "DATASET", "CREATED", "TRAIN JOB"],
            [
                [
                    v["version"],
                    ",".join(v.get("aliases") or []) or "-",
                    v["engine"],
                    v["dataset"],
                    output.short_time(v["created_at"]),
                    v.get("train_job_id") or "-",
                ]
                for v in versions
            ],
        )
        return 0
    rows = client.models()
    if args.json:
        output.print_json(rows)
    elif not rows:
        print("no models yet for this key's tenant (train one, or use the key `make run` printed)")
    else:
        output.table(
            ["NAME", "VERSIONS", "LATEST", "ENGINE", "DATASET", "CREATED"],
            [
                [
                    m["name"],
                    m["versions"],
                    m["latest_version"]["version"],
                    m["latest_version"]["engine"],
                    m["latest_version"]["dataset"],
                    output.short_time(m["latest_version"]["created_at"]),
                ]
                for m in rows
            ],
        )
    return 0


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    jobs = sub.add_parser("jobs", help="submit and follow jobs", parents=[common])
    actions = jobs.add_subparsers(dest="action", required=True, metavar="ACTION")

    p = actions.add_parser(
        "submit", help="submit a job body (JSON file, - for stdin)", parents=[common]
    )
    p.add_argument("file", nargs="?", help="JSON file with the job body, or - for stdin")
    p.add_argument("--idempotency-key", help="a retried submit with this key returns the same job")
    p.set_defaults(run=submit)

    for name, func, text in (("get", get, "show a job"), ("cancel", cancel, "cancel a job")):
        p = actions.add_parser(name, help=text, parents=[common])
        p.add_argument("id", help="job id")
        p.set_defaults(run=func)

    p = actions.add_parser("list", help="list jobs, newest first", parents=[common])
    p.add_argument("--status", choices=["queued", "running", "succeeded", "failed", "canceled"])
    p.add_argument("--kind", choices=["train", "generate", "evaluate"])
    p.add_argument("--limit", type=int, default=50, help="show at most N jobs (default 50)")
    p.add_argument("--all", action="store_true", help="follow the listing to its end")
    p.set_defaults(run=list_jobs)

    p = actions.add_parser(
        "wait", help="follow a job until it ends (exit 4 unless it succeeded)", parents=[common]
    )
    p.add_argument("id", help="job id")
    p.add_argument("--timeout", type=float, default=24 * 3600, help="give up after N seconds")
    p.add_argument("--poll", type=float, default=1.0, help="seconds between polls")
    p.set_defaults(run=wait)

    p = actions.add_parser(
        "artifacts", help="list a job's artifacts, or download them all", parents=[common]
    )
    p.add_argument("id", help="job id")
    p.add_argument(
        "--download",
        metavar="DIR",
        help="download every artifact into DIR and verify count and sizes (exit 6 on a shortfall)",
    )
    p.set_defaults(run=artifacts)

    p = sub.add_parser(
        "models", help="registered models, or one model's versions", parents=[common]
    )
    p.add_argument("name", nargs="?", help="a model name: list its versions")
    p.set_defaults(run=models)
