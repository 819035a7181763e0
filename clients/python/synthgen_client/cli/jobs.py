"""``synthgen jobs …``: submit, follow, list, cancel, logs and artifacts of jobs."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from synthgen_client.cli import events, output
from synthgen_client.cli.errors import EXIT_INTERRUPTED, EXIT_JOB_FAILED, UsageError
from synthgen_client.sdk import TERMINAL, ApiError, Client

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


def job_id(client: Client, ref: str) -> str:
    """The job a full or short id (as ``jobs list`` prints) names; a usage error if none
    or several do."""
    try:
        return client.resolve_job_id(ref)
    except LookupError as exc:
        raise UsageError(str(exc)) from exc


LONG_JOB_S = 3600  # past this the CLI asks before submitting (--yes does not ask)


def confirm_duration(client: Client, body: Json, args: argparse.Namespace) -> None:
    """Say how long the job will take; ask before one over an hour unless ``--yes``.
    With the body on stdin, or no terminal, there is no one to ask: --yes is needed."""
    try:
        found = client.estimate(body)
    except ApiError:
        return  # the submit itself answers with what is wrong
    seconds = found.get("seconds")
    if seconds is None:
        return
    text = f"estimated run time {output.format_seconds(seconds)} ({found.get('basis')})"
    if seconds <= LONG_JOB_S or args.yes:
        if not args.quiet:
            print(text, file=sys.stderr)
        return
    if args.file == "-" or not sys.stdin.isatty():
        raise UsageError(
            f"{text}: over an hour; pass --yes to submit it (there is no terminal to ask on)"
        )
    answer = input(f"{text}: over an hour. Submit it? [y/N] ")
    if answer.strip().lower() not in {"y", "yes"}:
        raise UsageError("not submitted (answered no); --yes submits without asking")


def submit(client: Client, args: argparse.Namespace) -> int:
    body = read_job_body(args.file)
    confirm_duration(client, body, args)
    job, replayed = client.submit_job(body, idempotency_key=args.idempotency_key)
    if args.json:
        output.print_json(job)
    elif replayed:
        # Not "submitted": this key already made a job, and nothing new was queued.
        print(
            f"existing {job['kind']} job {job['id']} ({job['status']}): idempotency key "
            f"{args.idempotency_key!r} already made it; nothing new was submitted"
        )
    else:
        print(f"submitted {job['kind']} job {job['id']} ({job['status']})")
    if not args.json:
        print(f"follow it with: synthgen jobs wait {job['id'][:8]}")
    return 0


def get(client: Client, args: argparse.Namespace) -> int:
    job = client.get(job_id(client, args.id))
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
        output.jobs_table(jobs, client.datasets.names())
    if more:
        # Said, not silently cut: the listing has more than was shown.
        print(f"(showing the newest {limit}; more exist: pass --all or --limit N)", file=sys.stderr)
    return 0


def cancel(client: Client, args: argparse.Namespace) -> int:
    job = client.cancel(job_id(client, args.id))
    if args.json:
        output.print_json(job)
    else:
        print(f"job {job['id']} is {job['status']}")
    return 0


def wait(client: Client, args: argparse.Namespace) -> int:
    line = output.ProgressLine()
    target = job_id(client, args.id)
    try:
        job = client.wait(
            target,
            poll_s=args.poll,
            timeout_s=args.timeout,
            on_update=None if args.quiet else line,
        )
    except KeyboardInterrupt:
        line.close()
        # Ctrl-C stops the waiting, not the job: say so, and how to stop the job.
        print(
            f"\nstopped waiting; job {target} keeps running on the server "
            f"(synthgen jobs wait {target[:8]} to follow it again, "
            f"synthgen jobs cancel {target[:8]} to stop it)",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    finally:
        line.close()
    if args.json:
        output.print_json(job)
    else:
        output.job_summary(job)
    return 0 if job["status"] == "succeeded" else EXIT_JOB_FAILED


def artifacts(client: Client, args: argparse.Namespace) -> int:
    if not args.download:
        items = client.artifacts(job_id(client, args.id))
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
    with output.FilesBar(quiet=args.quiet) as shown:
        saved = client.download_artifacts(job_id(client, args.id), directory, on_file=shown)
    total = sum(p.stat().st_size for p in saved)
    if args.json:
        output.print_json({"directory": str(directory), "files": len(saved), "bytes": total})
    else:
        print(
            f"saved {len(saved)} files ({output.human_size(total)}) to {directory}; "
            "count and sizes match the listing"
        )
    return 0


def _point_line(point: Json) -> str:
    values = " ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
        for k, v in point.items()
        if k != "step"
    )
    return f"step {int(point['step'])} {values}"


def _status_line(job: Json) -> str:
    progress = job.get("progress") or {}
    step = f" step {progress.get('step')}/{progress.get('total')}" if progress.get("total") else ""
    stage = f" stage {progress['stage']}" if progress.get("stage") else ""
    return f"{job['id'][:8]} {job['kind']} {job['status']}{stage}{step}"


def logs(client: Client, args: argparse.Namespace) -> int:
    """The job's status and its recorded training steps; -f follows until it ends."""
    after: int | None = None
    shown = None
    target = job_id(client, args.id)
    while True:
        job = client.get(target)
        line = _status_line(job)
        if line != shown and not args.json:
            print(line, flush=True)
            shown = line
        for point in client.jobs.curves(target, every=args.every, after=after):
            print(json.dumps(point) if args.json else _point_line(point), flush=True)
            after = int(point["step"])
        if not args.follow or job["status"] in TERMINAL:
            break
        time.sleep(args.poll)
    if job.get("error") and not args.json:
        print(f"error {job['error']['type']}: {job['error']['message']}")
    if args.follow and job["status"] != "succeeded":
        return EXIT_JOB_FAILED
    return 0


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    jobs = sub.add_parser("jobs", help="submit and follow jobs", parents=[common])
    actions = jobs.add_subparsers(dest="action", required=True, metavar="ACTION")
    events.add_parsers(sub, actions, common)

    p = actions.add_parser(
        "submit", help="submit a job body (JSON file, - for stdin)", parents=[common]
    )
    p.add_argument("file", nargs="?", help="JSON file with the job body, or - for stdin")
    p.add_argument("--idempotency-key", help="a retried submit with this key returns the same job")
    p.add_argument(
        "--yes",
        "-y",
        action="store_true",
        help="submit a job estimated over an hour without asking",
    )
    p.set_defaults(run=submit)

    for name, func, text in (("get", get, "show a job"), ("cancel", cancel, "cancel a job")):
        p = actions.add_parser(name, help=text, parents=[common])
        p.add_argument("id", help="job id, or its first characters")
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
    p.add_argument("id", help="job id, or its first characters")
    p.add_argument("--timeout", type=float, default=24 * 3600, help="give up after N seconds")
    p.add_argument("--poll", type=float, default=1.0, help="seconds between polls")
    p.set_defaults(run=wait)

    p = actions.add_parser(
        "artifacts", help="list a job's artifacts, or download them all", parents=[common]
    )
    p.add_argument("id", help="job id, or its first characters")
    p.add_argument(
        "--download",
        metavar="DIR",
        help="download every artifact into DIR and verify count and sizes (exit 6 on a shortfall)",
    )
    p.set_defaults(run=artifacts)

    p = actions.add_parser(
        "logs", help="a job's status and training steps; -f to follow it", parents=[common]
    )
    p.add_argument("id", help="job id, or its first characters")
    p.add_argument("-f", "--follow", action="store_true", help="follow until the job ends")
    p.add_argument("--every", type=int, default=1, help="every Nth training step")
    p.add_argument("--poll", type=float, default=1.0, help="seconds between polls with -f")
    p.set_defaults(run=logs)
