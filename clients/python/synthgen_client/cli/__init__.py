"""The ``synthgen`` command: run the embedded stack, manage the database and keys, and
talk to the REST API (``SYNTHGEN_API_URL``, ``SYNTHGEN_API_KEY``).

Global options (``--api-url``, ``--api-key``, ``--json``, ``--quiet``) go before or after
the subcommand. Errors are one line on stderr; exit codes are in ``client.cli.errors``.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path

from synthgen_client.cli import admin, datasets, engines, jobs, models, preview
from synthgen_client.cli.errors import (
    EXIT_API,
    EXIT_BUG,
    EXIT_INCOMPLETE,
    EXIT_INTERRUPTED,
    EXIT_JOB_FAILED,
    EXIT_NETWORK,
    EXIT_USAGE,
    UsageError,
)
from synthgen_client.sdk import ApiError, Client, IncompleteDownload, NetworkError

DEFAULT_URL = "http://127.0.0.1:8000"
SERVER_PACKAGES = {"core", "api", "worker", "models"}
DEMO_KEY_FILE = Path(".synthgen") / "api-key"


def _common() -> argparse.ArgumentParser:
    # SUPPRESS: an option given before the subcommand is not reset by the subparser's
    # default, so it may stand on either side.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--api-url",
        default=argparse.SUPPRESS,
        help=f"the API (env SYNTHGEN_API_URL, default {DEFAULT_URL})",
    )
    common.add_argument(
        "--api-key", default=argparse.SUPPRESS, help="an API key (env SYNTHGEN_API_KEY)"
    )
    common.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help="print the API's JSON instead of tables (for scripts)",
    )
    common.add_argument(
        "--quiet", "-q", action="store_true", default=argparse.SUPPRESS, help="no progress output"
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    parser = argparse.ArgumentParser(
        prog="synthgen",
        description=__doc__,
        parents=[common],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="exit codes: 0 ok, 1 unexpected error, 2 usage, 3 API error, "
        "4 job failed/canceled/timed out, 5 network, 6 incomplete download, 130 interrupted "
        "(Ctrl-C; a job keeps running)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    admin.add_parsers(sub, common)
    jobs.add_parsers(sub, common)
    datasets.add_parsers(sub, common)
    engines.add_parsers(sub, common)
    models.add_parsers(sub, common)
    preview.add_parsers(sub, common)
    return parser


def _client(args: argparse.Namespace) -> Client:
    url = getattr(args, "api_url", None) or os.environ.get("SYNTHGEN_API_URL") or DEFAULT_URL
    key = getattr(args, "api_key", None) or os.environ.get("SYNTHGEN_API_KEY")
    if not key:
        hint = (
            f"; `make run` saved one: export SYNTHGEN_API_KEY=$(cat {DEMO_KEY_FILE})"
            if DEMO_KEY_FILE.is_file()
            else ""
        )
        raise UsageError(
            "set SYNTHGEN_API_KEY or pass --api-key (create one with "
            f"`synthgen keys create --tenant NAME`){hint}"
        )
    return Client(url, key)


def _fail(code: int, message: str) -> int:
    print(f"synthgen: error: {message}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)  # argparse itself exits 2 on bad usage
    for flag in ("json", "quiet"):
        setattr(args, flag, getattr(args, flag, False))
    try:
        if hasattr(args, "run_local"):
            return int(args.run_local(args))
        return int(args.run(_client(args), args))
    except UsageError as exc:
        return _fail(exc.exit_code, str(exc))
    except ApiError as exc:
        return _fail(EXIT_API, str(exc))
    except NetworkError as exc:
        return _fail(EXIT_NETWORK, str(exc))
    except IncompleteDownload as exc:
        return _fail(EXIT_INCOMPLETE, f"download incomplete: {exc}")
    except TimeoutError as exc:
        return _fail(EXIT_JOB_FAILED, str(exc))
    except ModuleNotFoundError as exc:
        if exc.name not in SERVER_PACKAGES:
            raise
        # `up`, `demo`, `keys`, `db` run the server's code; the client distribution alone
        # (synthgen-client) has only the SDK and the REST commands.
        return _fail(
            EXIT_USAGE,
            f"`synthgen {args.command}` needs the synthgen server installed "
            "(pip install 'synthgen[api,worker]'); this install has only the client",
        )
    except KeyboardInterrupt:
        return _fail(EXIT_INTERRUPTED, "interrupted")
    except Exception as exc:  # noqa: BLE001 - the last line of defence: no traceback
        if os.environ.get("SYNTHGEN_DEBUG"):
            traceback.print_exc()
        return _fail(
            EXIT_BUG,
            f"unexpected {type(exc).__name__}: {exc} (set SYNTHGEN_DEBUG=1 for the traceback)",
        )


if __name__ == "__main__":
    sys.exit(main())
