"""``python -m worker.serve ARGS...``: ``celery -A worker.celery_app ARGS...`` started
with a fresh prometheus-client multiprocess directory (core/telemetry), e.g.
``python -m worker.serve worker -Q gpu --concurrency 1`` or ``python -m worker.serve beat``."""

from __future__ import annotations

import os
import sys

from core.config import Settings
from core.telemetry import multiproc


def main(argv: list[str] | None = None) -> None:
    multiproc.prepare_dir(Settings().metrics_dir)
    # exec: Celery takes this process's pid and signals, and inherits the directory.
    command = [sys.executable, "-m", "celery", "-A", "worker.celery_app"]
    os.execv(sys.executable, [*command, *(sys.argv[1:] if argv is None else argv)])  # noqa: S606


if __name__ == "__main__":
    main()
