"""``synthgen engines [ENGINE] [--json]``: the engines and every train option, as the API
validates them (``GET /v1/engines``)."""

from __future__ import annotations

import argparse
from typing import Any

from synthgen_client.cli import output
from synthgen_client.cli.errors import UsageError
from synthgen_client.sdk import Client


def run(client: Client, args: argparse.Namespace) -> int:
    listing = client.engines()
    if args.engine is not None:
        listing = [e for e in listing if e["name"] == args.engine]
        if not listing:
            names = ", ".join(e["name"] for e in client.engines())
            raise UsageError(f"no engine {args.engine!r}; the engines are {names}")
    if args.json:
        output.print_json(listing)
        return 0
    for i, engine in enumerate(listing):
        if i:
            print()
        sizes = ", ".join(str(s) for s in engine["image_sizes"])
        print(f"{engine['name']}: {engine['description']}")
        print(f"image sizes: {sizes}")
        print("train config:")
        _options(engine["options"])
        # A generate (or preview) job's `config`: the same columns, where the default says
        # what a left-out value samples with (the model's own default, say).
        print()
        print("generate config:")
        _options(engine["sample_options"])
    return 0


def _options(options: list[dict[str, Any]]) -> None:
    if not options:
        print("  none")
        return
    output.table(
        ["OPTION", "TYPE", "DEFAULT", "RANGE", "WHAT"],
        [[o["name"], o["type"], o["default_text"], o["range_text"] or "-", o["help"]]
         for o in options],
    )  # fmt: skip


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "engines",
        help="engines and their train options",
        parents=[common],
        description="Each engine's train options (a train job's `config`) and sampling "
        "options (a generate job's `config`): type, default (or how it follows the image "
        "size, or what a left-out value samples with), range, and what it does.",
    )
    p.add_argument("engine", nargs="?", help="only this engine")
    p.set_defaults(run=run)
