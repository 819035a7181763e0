"""prometheus-client's multiprocess directory, prepared by the start-up commands.

uvicorn's worker processes and Celery's prefork children each write their samples to
mmap files in ``PROMETHEUS_MULTIPROC_DIR``; whoever answers a scrape merges them
(core/telemetry/exposition.py). prometheus-client picks its value store when it is first
imported, so the directory must be exported before that, and emptied: files left by a
previous run would be added to this run's totals. This module therefore never imports
prometheus-client.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_dir(path: Path | None) -> Path:
    """Empty ``path`` (or make a fresh temporary directory) and export it for this process
    and every process it starts."""
    if path is None:
        path = Path(tempfile.mkdtemp(prefix="synthgen-metrics-"))
    else:
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
    os.environ[ENV] = str(path)
    return path


def current_dir() -> str | None:
    """The directory this process writes its samples to, or None in single-process mode."""
    return os.environ.get(ENV) or None
