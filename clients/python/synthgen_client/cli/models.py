"""``synthgen models [ls | versions NAME | NAME | aliases NAME | alias set NAME ALIAS VERSION
| alias rm NAME ALIAS]``."""

from __future__ import annotations

import argparse
from typing import Any

from synthgen_client.cli import output
from synthgen_client.cli.errors import UsageError
from synthgen_client.sdk import Client

USAGE = (
    "synthgen models [ls | versions NAME | aliases NAME | alias set NAME ALIAS VERSION | "
    "alias rm NAME ALIAS]"
)


def run(client: Client, args: argparse.Namespace) -> int:
    words = list(args.words)
    match words:
        case [] | ["ls"]:
            return _list(client, args)
        case ["versions", name] | [name] if name not in {"versions", "aliases", "alias"}:
            return _versions(client, args, name)
        case ["aliases", name]:
            return _aliases(client, args, name)
        case ["alias", "set", name, alias, version] if version.isdigit():
            row = client.models.set_alias(name, alias, int(version))
            if args.json:
                output.print_json(row)
            else:
                print(f"{name}@{alias} → version {row['version']} (set by {row['updated_by']})")
            return 0
        case ["alias", "rm", name, alias]:
            client.models.delete_alias(name, alias)
            if args.json:
                output.print_json({"name": name, "alias": alias, "removed": True})
            else:
                print(f"removed {name}@{alias}")
            return 0
    raise UsageError(f"unexpected arguments {' '.join(words)!r}; usage: {USAGE}")


def _list(client: Client, args: argparse.Namespace) -> int:
    return output.listing(
        args.json,
        client.models.list(),
        ["NAME", "VERSIONS", "LATEST", "ALIASES", "ENGINE", "DATASET", "CREATED"],
        lambda m: [
            m["name"],
            m["versions"],
            m["latest_version"]["version"],
            ",".join(f"{a}→{v}" for a, v in (m.get("aliases") or {}).items()) or "-",
            m["latest_version"]["engine"],
            m["latest_version"]["dataset"],
            output.short_time(m["latest_version"]["created_at"]),
        ],
        empty="no models yet for this key's tenant (train one, or use the key `make run` printed)",
    )


def _versions(client: Client, args: argparse.Namespace, name: str) -> int:
    return output.listing(
        args.json,
        client.models.versions(name),
        ["VERSION", "ALIASES", "ENGINE", "DATASET", "DP", "CREATED", "TRAIN JOB"],
        lambda v: [
            v["version"],
            ",".join(v.get("aliases") or []) or "-",
            v["engine"],
            v["dataset"],
            output.dp_text(v.get("privacy")),
            output.short_time(v["created_at"]),
            v.get("train_job_id") or "-",
        ],
    )


def _aliases(client: Client, args: argparse.Namespace, name: str) -> int:
    found = client.models.aliases(name)
    return output.listing(
        args.json,
        found["items"],
        ["ALIAS", "VERSION", "SET BY", "WHEN"],
        lambda a: [
            f"{name}@{a['alias']}",
            a["version"],
            a["updated_by"] or "-",
            output.short_time(a["updated_at"]),
        ],
        body=found,
    )


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "models",
        help="models, versions and aliases",
        parents=[common],
        usage=USAGE,
        description="ls: models with their latest version; versions NAME (or just NAME): a "
        "model's versions; aliases NAME: its aliases; alias set NAME ALIAS VERSION: point "
        "NAME@ALIAS at a version (the move is recorded); alias rm NAME ALIAS.",
    )
    p.add_argument("words", nargs="*", help=argparse.SUPPRESS)
    p.set_defaults(run=run)
