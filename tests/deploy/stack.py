"""docker-compose.yml, unchanged, on the private engine: the CPU profile, every service
but Grafana (no stand-in for it here; its provisioning is checked by test_compose.py).

The images are built from Dockerfile.api and Dockerfile.worker, unchanged, with
``docker build --network host`` (containers on the engine's networks have no route out,
and the legacy builder needs no frontend image). A user's ``.env`` is written from
.env.example with fresh secrets, into a folder of the test's own.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.deploy.engine import HOST, docker
from tests.tools import ROOT, venv_tool

PROJECT = "synthgen-test"
IMAGES = {"synthgen-api:latest": "Dockerfile.api", "synthgen-worker:latest": "Dockerfile.worker"}
# Everything the CPU profile starts but Grafana, named so `up` leaves Grafana out.
SERVICES = [
    "postgres", "redis", "seaweedfs", "s3-init", "migrate", "api", "worker-gpu-on-cpu",
    "worker-cpu", "worker-preview", "beat", "prometheus",
]  # fmt: skip
WORKERS = ["worker-gpu-on-cpu", "worker-cpu", "worker-preview"]
API = "http://localhost:8000"
S3 = "http://localhost:8333"
PROMETHEUS = "http://localhost:9090"


def _ready(service: str, row: dict) -> bool:
    if service in {"migrate", "s3-init"}:  # one-shots
        return row["State"] == "exited" and row["ExitCode"] == 0
    if service == "beat":  # no health check of its own (no HTTP port)
        return row["State"] == "running"
    return (row["State"], row["Health"]) == ("running", "healthy")


def build_images() -> dict[str, dict[str, float]]:
    """Both images built; per image the build's wall seconds and the image's size."""
    built = {}
    for tag, dockerfile in IMAGES.items():
        started = time.monotonic()
        docker(
            "build", "--network", "host", "-f", str(ROOT / dockerfile), "-t", tag, str(ROOT),
            env={"DOCKER_BUILDKIT": "0", "PATH": "/usr/bin:/bin"}, timeout=1800,
        )  # fmt: skip
        size = docker("image", "inspect", "-f", "{{.Size}}", tag).stdout.strip()
        built[tag] = {"build_s": round(time.monotonic() - started, 1), "size_mb": int(size) / 1e6}
    # The layers of earlier builds no tag reaches any more: without this every code change
    # would leave a gigabyte or so in the engine's data root, run after run.
    docker("image", "prune", "-f", timeout=600)
    return built


def write_env(folder: Path) -> Path:
    """.env as README says a user makes it: .env.example with every secret changed."""
    lines = []
    for line in (ROOT / ".env.example").read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.startswith("#"):
            if "PASSWORD" in key or "SECRET" in key:
                value = secrets.token_hex(12)
            if key == "COMPOSE_PROFILES":
                value = "cpu"
        lines.append(f"{key}{sep}{value}" if sep else line)
    env = folder / ".env"
    env.write_text("\n".join(lines) + "\n")
    return env


@dataclass
class Stack:
    env_file: Path
    key: str = ""
    timings: dict[str, float] = field(default_factory=dict)

    def compose(
        self, *args: str, timeout: float = 600, check: bool = True
    ) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [venv_tool("docker-compose"), "-p", PROJECT, "--project-directory", str(ROOT),
             "-f", str(ROOT / "docker-compose.yml"), "--env-file", str(self.env_file), *args],
            capture_output=True, text=True, timeout=timeout,
            env={**os.environ, "DOCKER_HOST": HOST, "COMPOSE_PROFILES": "cpu"},
        )  # fmt: skip
        if check and done.returncode != 0:
            raise AssertionError(f"compose {' '.join(args)}: {done.stdout}\n{done.stderr}")
        return done

    def up(self) -> float:
        started = time.monotonic()
        self.compose("up", "-d", "--no-build", "--pull", "never", "--wait",
                     "--wait-timeout", "300", *SERVICES, timeout=420)  # fmt: skip
        took = round(time.monotonic() - started, 1)
        # `up --wait` answered 0 with a one-shot dependency exited 1 and its dependants
        # never started (compose 2.40): check every state here, with the logs of any other.
        bad = {name: row for name, row in self.states().items() if not _ready(name, row)}
        assert not bad, f"not up: {bad}\n{self.logs(*bad)}"
        return took

    def states(self) -> dict[str, dict]:
        rows = self.compose("ps", "-a", "--format", "json").stdout.splitlines()
        return {row["Service"]: row for row in map(json.loads, rows)}

    def container(self, service: str) -> str:
        return self.compose("ps", "-q", service).stdout.strip().splitlines()[0]

    def inspect(self, service: str, template: str) -> str:
        return docker("inspect", "-f", template, self.container(service)).stdout.strip()

    def logs(self, *services: str) -> str:
        return self.compose("logs", "--no-color", "--tail", "60", *services, check=False).stdout

    def client(self, key: str | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=API, headers={"Authorization": f"Bearer {key or self.key}"}, timeout=30
        )

    def create_key(self, tenant: str) -> str:
        """README's command: `docker compose exec -T api synthgen keys create --tenant me`."""
        done = self.compose("exec", "-T", "api", "synthgen", "keys", "create", "--tenant", tenant)
        return done.stdout.strip().splitlines()[-1]

    @staticmethod
    def get_json(client: httpx.Client, url: str, **kw: object) -> dict:
        """GET as a careful client does: a 503 (each API process's first statement on a
        dead pooled connection after a database restart) is retried after Retry-After."""
        for _ in range(3):
            response = client.get(url, **kw)  # type: ignore[arg-type]
            if response.status_code != 503:
                break
            time.sleep(int(response.headers["Retry-After"]))
        assert response.status_code == 200, response.text
        return dict(response.json())

    def wait_job(self, job_id: str, statuses: set[str], timeout_s: float = 600) -> dict:
        deadline = time.monotonic() + timeout_s
        with self.client() as client:
            while time.monotonic() < deadline:
                job = self.get_json(client, f"/v1/jobs/{job_id}")
                if job["status"] in statuses:
                    return job
                time.sleep(1)
        logs = self.logs(*WORKERS)
        raise AssertionError(f"job {job_id} not {statuses} in {timeout_s} s: {job}\n{logs}")

    def wait_step(self, job_id: str, step: int, timeout_s: float = 300) -> dict:
        deadline = time.monotonic() + timeout_s
        with self.client() as client:
            while time.monotonic() < deadline:
                job = self.get_json(client, f"/v1/jobs/{job_id}")
                done = (job.get("progress") or {}).get("step") or 0
                if done >= step or job["status"] in {"succeeded", "failed", "canceled"}:
                    return job
                time.sleep(0.5)
        raise AssertionError(f"job {job_id} did not reach step {step}: {job}")
