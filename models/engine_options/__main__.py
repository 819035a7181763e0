"""``python -m models.engine_options [--readme [PATH]] [--json]``: print every engine's
options (JSON), or rewrite the README's generated table from the options classes."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from models.engine_options import describe, names, readme


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.engine_options", description=__doc__)
    parser.add_argument(
        "--readme",
        nargs="?",
        const="README.md",
        metavar="PATH",
        help="rewrite the generated table in PATH (default README.md)",
    )
    args = parser.parse_args(argv)
    if args.readme:
        changed = readme.rewrite(Path(args.readme))
        print(f"{args.readme}: {'updated' if changed else 'already up to date'}")
        return 0
    print(json.dumps([describe(name) for name in names()], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
