"""``python -m api.serve``: the API under uvicorn with ``SYNTHGEN_API_WORKERS`` processes
(by default one per core: core/config.py's ``default_api_workers``), JSON logs, and a
fresh prometheus-client multiprocess directory (core/telemetry)."""

from __future__ import annotations

import argparse
import os

from core.config import Settings, default_api_workers
from core.telemetry import logs, multiproc


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m api.serve", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    settings = Settings()
    # Before uvicorn starts (and imports the app, and with it prometheus-client) in
    # this process or its workers, which inherit the environment.
    multiproc.prepare_dir(settings.metrics_dir)
    os.environ.setdefault("SYNTHGEN_API_QUIET_GC", "true")  # a server process: see api/main.py

    import uvicorn

    uvicorn.run(
        "api.main:app",
        host=args.host,
        port=args.port,
        workers=settings.api_workers or default_api_workers(),
        log_config=logs.config(settings.log_level),
        access_log=False,
        server_header=False,
    )


if __name__ == "__main__":
    main()
