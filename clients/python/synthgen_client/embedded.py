"""The embedded stack: SQLite, the local store, a SQLite-backed broker, two worker child
processes (jobs; previews) and the API, with no services to install. ``synthgen up``
runs it."""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

from core.config import Settings
from core.migrate import upgrade


class PortInUse(Exception):  # noqa: N818 - reads as the condition it reports
    """The API's address is taken (another ``synthgen up``, or any other server)."""


def check_port_free(host: str, port: int) -> None:
    """Fail before anything starts or prints "API on …" when the port is taken.

    uvicorn would find out only after the worker was started and the banner printed.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            reason = "in use" if exc.errno == errno.EADDRINUSE else exc.strerror
            raise PortInUse(
                f"cannot listen on {host}:{port}: {reason} (is another `synthgen up` "
                "running?); pass --port N to use another port"
            ) from exc


# The two workers share one machine with the API: the preview worker samples on one
# thread, and the job worker leaves it that core, so a preview beside a train job never
# oversubscribes the CPU (worker/threads.py says why that costs far more than a core).
# The user's own SYNTHGEN_ variables win over these.
EMBEDDED_THREADS = {
    "worker": {"SYNTHGEN_WORKER_RESERVED_CORES": "1"},
    "preview": {"SYNTHGEN_TORCH_THREADS": "1"},
}


# Celery warns in every worker process that runs as root, a dozen lines pointing at an
# option (--uid) `up` does not have; `up` starts two workers, so it came twice. The
# children leave it out and `up` says it once, in a line of its own (ROOT_NOTE). Celery
# refuses root outright only when pickle is accepted; our workers accept JSON only.
SILENCE_ROOT_WARNING = "ignore:You're running the worker with superuser privileges"
ROOT_NOTE = (
    "synthgen: running as root; the workers accept JSON messages only (never pickle), "
    "but an ordinary user is safer where you can use one"
)


def worker_env(env: dict[str, str], threads: dict[str, str]) -> dict[str, str]:
    """A worker child's environment: ``threads`` (unless the user set them), ``env``, and
    Celery's root warning silenced (after the user's own PYTHONWARNINGS, so it wins)."""
    filters = [f for f in (env.get("PYTHONWARNINGS"), SILENCE_ROOT_WARNING) if f]
    return {**threads, **env, "PYTHONWARNINGS": ",".join(filters)}


def embedded_env(home: Path, port: int) -> dict[str, str]:
    home = home.resolve()
    return {
        "SYNTHGEN_DATABASE_URL": f"sqlite:///{home}/synthgen.db",
        "SYNTHGEN_BROKER_URL": f"sqla+sqlite:///{home}/broker.db",
        "SYNTHGEN_STORAGE_URL": f"file://{home}/store",
        "SYNTHGEN_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "SYNTHGEN_WORK_DIR": str(home / "work"),
    }


def stop_worker(worker: subprocess.Popen[bytes]) -> None:
    """Warm shutdown (finish the running step), then Celery's cold shutdown, which also
    ends the pool's children; a job cut short is re-queued by the reconciler."""
    for sig, wait_s in ((signal.SIGTERM, 10), (signal.SIGQUIT, 10)):
        worker.send_signal(sig)
        try:
            worker.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue
    worker.kill()


# --quiet: no start-up banner in the user's terminal (a global option, before `worker`).
_CELERY_WORKER = (sys.executable, "-m", "celery", "-A", "worker.celery_app", "--quiet", "worker")


def worker_command(home: Path) -> list[str]:
    """The job worker child: the ``gpu`` queue (train, generate, evaluate) one job at a
    time, with beat (the reconciler, whose runs go to the ``cpu`` queue)."""
    return [
        *_CELERY_WORKER,
        "-Q",
        "gpu",
        "--concurrency",
        "1",
        "--loglevel",
        "WARNING",
        "-B",
        "-s",
        str(home / "celerybeat-schedule"),
    ]


def preview_worker_command(home: Path) -> list[str]:
    """The light worker child: previews, and the ``cpu`` queue's short tasks (webhook
    deliveries), which must not wait behind a train job on the main worker. Tasks run in
    its main process (solo pool) so the models it loads stay cached between previews."""
    return [
        *_CELERY_WORKER,
        "-Q",
        "preview,cpu",
        "--pool",
        "solo",
        "-n",
        "preview@%h",
        "--without-gossip",
        "--without-mingle",
        "--loglevel",
        "WARNING",
    ]


def run(home: Path, host: str, port: int) -> int:
    """Start worker + API in the foreground until interrupted.

    Returns 0 after an interrupt, or the worker's exit status when the worker dies on its
    own: an API without a worker would accept jobs that stay queued forever, so the stack
    stops and says so rather than serve half a service.
    """
    check_port_free(host, port)
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **embedded_env(home, port)}
    os.environ.update(embedded_env(home, port))
    settings = Settings()
    upgrade(settings.database_url)

    import uvicorn

    # By import string: the client package never imports the API's code (tests check
    # the layers); the app factory reads the settings set in os.environ above.
    server = uvicorn.Server(
        uvicorn.Config(
            "api.main:create_app", factory=True, host=host, port=port, log_level="warning"
        )
    )
    workers = [
        subprocess.Popen(command, env=worker_env(env, threads))  # noqa: S603 - our own module
        for command, threads in (
            (worker_command(home), EMBEDDED_THREADS["worker"]),
            (preview_worker_command(home), EMBEDDED_THREADS["preview"]),
        )
    ]
    stopping = threading.Event()
    died: list[subprocess.Popen[bytes]] = []

    def _watch_worker(worker: subprocess.Popen[bytes]) -> None:
        code = worker.wait()
        if not stopping.is_set():
            died.append(worker)
            print(
                f"synthgen: the worker exited with status {code} (its error is above); "
                "stopping the API, since jobs submitted now would never run",
                file=sys.stderr,
                flush=True,
            )
            server.should_exit = True

    def _terminate(*_: object) -> None:
        stopping.set()
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    for worker in workers:
        threading.Thread(target=_watch_worker, args=(worker,), daemon=True).start()
    try:
        print(f"synthgen API on http://{host}:{port}  (data in {home})", flush=True)
        print(f"console on http://{host}:{port}/console/", flush=True)
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            print(ROOT_NOTE, file=sys.stderr, flush=True)
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        stopping.set()
        for worker in workers:
            if worker.poll() is None:
                stop_worker(worker)
    return died[0].returncode if died else 0
