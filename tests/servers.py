"""Private server processes for tests, each on free ports of its own, started, stopped and
killed for real: Postgres (initdb into a temporary directory), Redis, a SeaweedFS S3
server, and the project's own Celery worker, beat and API processes."""

from __future__ import annotations

import glob
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
import httpx

from core.config import Settings

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(condition, timeout_s: float, what: str, interval_s: float = 0.1):  # noqa: ANN001, ANN201
    """Poll ``condition()`` until it returns something truthy; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen within {timeout_s} s")
        time.sleep(interval_s)


class Postgres:
    """A Postgres cluster of its own. Postgres refuses to run as root, so when the tests
    do, the cluster runs as the ``postgres`` user in a directory it owns."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="synthgen-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.bin = Path(sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1])
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(  # noqa: S603
            [*self.as_user, str(self.bin / tool), *args],
            check=True,
            capture_output=True,
            cwd=self.dir,
        )

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c full_page_writes=off -c max_connections=300"
        )
        log = str(self.dir / "postgres.log")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", log, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        try:
            self.stop("immediate")
        except subprocess.CalledProcessError:
            pass  # already stopped
        shutil.rmtree(self.dir, ignore_errors=True)


class Redis:
    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(  # noqa: S603
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],  # fmt: skip
            stdout=subprocess.DEVNULL,
        )
        wait_for(lambda: self.cli("PING") == "PONG", 10, "redis start")

    def cli(self, *args: str) -> str:
        done = subprocess.run(  # noqa: S603
            ["redis-cli", "-p", str(self.port), *args], capture_output=True, text=True
        )
        return done.stdout.strip()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


class SeaweedFS:
    """``weed server`` with its S3 gateway: a real S3 API that checks signatures. Every
    port is chosen here (the defaults would collide with another test run's server)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="synthgen-weed-"))
        self.s3_port = free_port()
        self.ports = {name: free_port() for name in ("master", "volume", "filer")}
        self.access_key = "synthgen-test"
        self.secret_key = secrets.token_hex(16)
        self.proc: subprocess.Popen[bytes] | None = None
        identity = {
            "name": "tests",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        (self.dir / "s3.json").write_text(json.dumps({"identities": [identity]}))

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def client(self):  # noqa: ANN201 - a boto3 S3 client
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
        )

    def start(self) -> None:
        args = [
            str(VENV_BIN / "weed"), "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-dir={self.dir}", "-filer", "-s3", f"-s3.port={self.s3_port}",
            f"-s3.config={self.dir / 's3.json'}", "-s3.port.iceberg=0", "-s3.port.lance=0",
            "-master.volumeSizeLimitMB=64", "-volume.max=0", "-master.telemetry=false",
        ]  # fmt: skip
        for name, port in self.ports.items():
            args += [f"-{name}.port={port}", f"-{name}.port.grpc={free_port()}"]
        args.append(f"-s3.port.grpc={free_port()}")
        with (self.dir / "weed.log").open("ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
        wait_for(self._ready, 60, "SeaweedFS start", interval_s=0.3)

    def _ready(self) -> bool:
        try:
            self.client().list_buckets()
        except Exception:  # noqa: BLE001 - not up yet
            return False
        return True

    def create_bucket(self, name: str) -> None:
        # Just after start the filer may still refuse writes for a moment.
        def created() -> bool:
            try:
                self.client().create_bucket(Bucket=name)
            except Exception:  # noqa: BLE001
                return False
            return True

        wait_for(created, 30, f"bucket {name}", interval_s=0.3)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def destroy(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)


class Process:
    """One of the project's processes (worker, beat, API) with its log file."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("ab") as out:
            self.proc = subprocess.Popen(  # noqa: S603
                args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_log(self, needle: str, timeout_s: float = 90) -> None:
        def seen() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.log.name} exited:\n{self.text()[-3000:]}")
            return needle in self.text()

        wait_for(seen, timeout_s, f"{needle!r} in {self.log.name}", interval_s=0.2)

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def celery(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "worker.celery_app", *args]


def wait_http(url: str, timeout_s: float = 60) -> None:
    def up() -> bool:
        try:
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(up, timeout_s, f"{url} answering", interval_s=0.2)


def settings_env(settings: Settings, **overrides: object) -> dict[str, str]:
    """The environment that gives a child process ``settings`` (and ``overrides``)."""
    env = {
        f"SYNTHGEN_{name.upper()}": ",".join(map(str, value))
        if isinstance(value, list)
        else str(value)
        for name, value in settings.model_dump().items()
        if value not in (None, []) and name not in {"aws_access_key_id", "aws_secret_access_key"}
    }
    env |= {f"SYNTHGEN_{k.upper()}": str(v) for k, v in overrides.items()}
    env["AWS_ACCESS_KEY_ID"] = settings.aws_access_key_id or ""
    env["AWS_SECRET_ACCESS_KEY"] = settings.aws_secret_access_key or ""
    keep = {"PATH", "HOME", "LANG", "PYTHONPATH", "TMPDIR"}
    inherited = {k: v for k, v in os.environ.items() if k in keep}
    return inherited | env | {"OMP_NUM_THREADS": "1"}
