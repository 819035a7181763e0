"""The ``synthgen`` command: run the embedded stack, manage the database and keys, and
talk to the REST API (``SYNTHGEN_API_URL``, ``SYNTHGEN_API_KEY``)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from client.sdk import ApiError, Client


def _client(args: argparse.Namespace) -> Client:
    key = args.api_key or os.environ.get("SYNTHGEN_API_KEY")
    if not key:
        sys.exit("set SYNTHGEN_API_KEY (create one with `synthgen keys create --tenant NAME`)")
    return Client(args.api_url, key)


def _print(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=str))


def cmd_up(args: argparse.Namespace) -> int:
    from client import embedded

    return embedded.run(Path(args.home), args.host, args.port)


def cmd_demo(args: argparse.Namespace) -> int:
    from client import demo

    return demo.run(Path(args.home), args.port, max_seconds=args.max_seconds)


def cmd_db(args: argparse.Namespace) -> int:
    from core.config import get_settings
    from core.migrate import downgrade, upgrade

    url = get_settings().database_url
    (upgrade if args.action == "upgrade" else downgrade)(url, args.revision)
    print(f"database {args.action}d to {args.revision}")
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    from core.config import get_settings
    from core.db import session_scope
    from core.tenants import service as tenants

    if args.action == "revoke":
        if not args.key:
            sys.exit("give the key (or its first 10 characters) with --key")
        with session_scope(get_settings().database_url) as session:
            revoked = tenants.revoke_key(session=session, prefix=args.key)
        # The API caches a key for settings.auth_cache_s, so say when it stops working.
        wait = get_settings().auth_cache_s
        print(f"revoked {revoked} key(s); running API servers refuse them within {wait} s")
        return 0 if revoked else 1
    if not args.tenant:
        sys.exit("give the tenant with --tenant NAME")
    with session_scope(get_settings().database_url) as session:
        key = tenants.create_key(session=session, tenant_name=args.tenant)
    print(f"API key for tenant {args.tenant!r} (shown once; store it now):")
    print(key)
    return 0


def cmd_jobs(args: argparse.Namespace) -> int:
    client = _client(args)
    if args.action == "submit":
        text = sys.stdin.read() if args.target == "-" else Path(args.target).read_text()
        _print(client.submit(json.loads(text), idempotency_key=args.idempotency_key))
    elif args.action == "get":
        _print(client.get(args.target))
    elif args.action == "list":
        _print(client.list())
    elif args.action == "cancel":
        _print(client.cancel(args.target))
    elif args.action == "wait":
        _print(client.wait(args.target))
    elif args.action == "artifacts":
        items = client.artifacts(args.target)
        if args.download:
            for item in items:
                print(client.download(item["url"], Path(args.download) / item["name"]))
        else:
            _print(items)
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    client = _client(args)
    _print(client.versions(args.name) if args.name else client.models())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="synthgen", description=__doc__)
    parser.add_argument(
        "--api-url", default=os.environ.get("SYNTHGEN_API_URL", "http://127.0.0.1:8000")
    )
    parser.add_argument("--api-key", default=None)
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="run the embedded stack (API + worker, no services)")
    up.add_argument("--home", default=".synthgen")
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--port", type=int, default=8000)
    up.set_defaults(func=cmd_up)

    demo = sub.add_parser("demo", help="embedded stack + a real train → generate job on digits")
    demo.add_argument("--home", default=".synthgen")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--max-seconds", type=float, default=180.0)
    demo.set_defaults(func=cmd_demo)

    db = sub.add_parser("db", help="apply or revert migrations")
    db.add_argument("action", choices=["upgrade", "downgrade"])
    db.add_argument("revision", nargs="?", default=None)
    db.set_defaults(func=cmd_db)

    keys = sub.add_parser("keys", help="API keys")
    keys.add_argument("action", choices=["create", "revoke"])
    keys.add_argument("--tenant", help="create: the tenant the key belongs to")
    keys.add_argument("--key", help="revoke: the key, or its first 10 characters")
    keys.set_defaults(func=cmd_keys)

    jobs = sub.add_parser("jobs", help="submit and follow jobs")
    jobs.add_argument("action", choices=["submit", "get", "list", "cancel", "wait", "artifacts"])
    jobs.add_argument("target", nargs="?", help="job id, or a JSON file (- for stdin) to submit")
    jobs.add_argument("--idempotency-key")
    jobs.add_argument("--download", help="artifacts: download them into this directory")
    jobs.set_defaults(func=cmd_jobs)

    models = sub.add_parser("models", help="registered models and their versions")
    models.add_argument("name", nargs="?")
    models.set_defaults(func=cmd_models)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "db" and args.revision is None:
        args.revision = "head" if args.action == "upgrade" else "base"
    try:
        return int(args.func(args))
    except ApiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
