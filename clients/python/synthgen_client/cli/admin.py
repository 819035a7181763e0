"""``synthgen up|demo|db|keys``: commands that run the stack or touch its database
directly (they need the server package, not just the SDK)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from synthgen_client.cli.errors import NetworkUnavailable, UsageError


def up(args: argparse.Namespace) -> int:
    from synthgen_client import embedded

    try:
        return embedded.run(Path(args.home), args.host, args.port)
    except embedded.PortInUse as exc:
        raise NetworkUnavailable(str(exc)) from exc


def demo(args: argparse.Namespace) -> int:
    from synthgen_client import demo as demo_mod
    from synthgen_client import embedded

    try:
        return demo_mod.run(Path(args.home), args.port, steps=args.steps, count=args.count)
    except embedded.PortInUse as exc:
        raise NetworkUnavailable(str(exc)) from exc


def _database_url() -> str:
    """The configured database, refusing a SQLite file that is not there: SQLite would
    quietly create an empty one (or fail with an unhelpful "unable to open")."""
    from sqlalchemy.engine import make_url

    from core.config import Settings

    url = Settings().database_url
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        path = Path(parsed.database).expanduser()
        if not path.is_file():
            raise UsageError(
                f"no synthgen database at {path.resolve()}: run this in the directory where "
                "you ran `synthgen up` / `make run`, or set SYNTHGEN_DATABASE_URL"
            )
    return url


def _in_session(url: str, work: Any) -> Any:
    from sqlalchemy.exc import OperationalError

    from core.db import session_scope

    try:
        with session_scope(url) as session:
            return work(session)
    except OperationalError as exc:
        reason = str(exc.orig).splitlines()[0] if exc.orig else str(exc).splitlines()[0]
        raise UsageError(
            f"cannot use the database {url.split('@')[-1]}: {reason} "
            "(is it migrated? `synthgen db upgrade`)"
        ) from exc


def db(args: argparse.Namespace) -> int:
    from core.config import Settings
    from core.migrate import downgrade, upgrade

    url = Settings().database_url
    revision = args.revision or ("head" if args.action == "upgrade" else "base")
    (upgrade if args.action == "upgrade" else downgrade)(url, revision)
    print(f"database {args.action}d to {revision}")
    return 0


def keys(args: argparse.Namespace) -> int:
    from core.config import Settings
    from core.tenants import service as tenants

    url = _database_url()
    if args.action == "revoke":
        if not args.key:
            raise UsageError("give the key (or its first 10 characters) with --key")
        revoked = _in_session(url, lambda s: tenants.revoke_key(session=s, prefix=args.key))
        # The API caches a key for settings.auth_cache_s, so say when it stops working.
        wait = Settings().auth_cache_s
        print(f"revoked {revoked} key(s); running API servers refuse them within {wait:g} s")
        return 0 if revoked else 1
    if not args.tenant:
        raise UsageError("give the tenant with --tenant NAME")
    key = _in_session(url, lambda s: tenants.create_key(session=s, tenant_name=args.tenant))
    if args.json:
        print(json.dumps({"tenant": args.tenant, "key": key}))
        return 0
    print(f"API key for tenant {args.tenant!r} (shown once; store it now):")
    print(key)
    return 0


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "up", help="run the embedded stack (API + worker, no services)", parents=[common]
    )
    p.add_argument("--home", default=".synthgen", help="where its data lives")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.set_defaults(run_local=up)

    p = sub.add_parser(
        "demo", help="embedded stack + a real train → generate job on digits", parents=[common]
    )
    p.add_argument("--home", default=".synthgen")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--steps",
        type=int,
        default=1500,
        help="training steps (default 1500: the same model on every machine)",
    )
    p.add_argument("--count", type=int, default=1000, help="digits to generate")
    p.set_defaults(run_local=demo)

    p = sub.add_parser("db", help="apply or revert migrations", parents=[common])
    p.add_argument("action", choices=["upgrade", "downgrade"])
    p.add_argument("revision", nargs="?", default=None)
    p.set_defaults(run_local=db)

    p = sub.add_parser("keys", help="create or revoke API keys", parents=[common])
    p.add_argument("action", choices=["create", "revoke"])
    p.add_argument("--tenant", help="create: the tenant the key belongs to")
    p.add_argument("--key", help="revoke: the key, or its first 10 characters")
    p.set_defaults(run_local=keys)
