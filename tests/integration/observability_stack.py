"""A live, multi-process stack for the observability tests: the API under
``python -m api.serve`` with two uvicorn workers, a Celery worker under
``python -m worker.serve`` (prefork, each child replaced after one task, serving
/metrics), and Debian's Prometheus scraping both every second with the repo's alert
rules loaded. Each process logs to a file the tests read."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

from core.config import Settings
from tests.integration.conftest import ROOT, settings_env
from tests.servers import free_port
from tests.tools import prometheus_bin


@dataclass
class Stack:
    api_url: str
    worker_metrics_url: str
    prometheus_url: str
    api_metrics_dir: Path
    worker_metrics_dir: Path
    api_log: Path
    worker_log: Path

    def query(self, promql: str) -> dict[str, Any]:
        """An instant query through Prometheus's HTTP API; the whole answer."""
        answer = httpx.get(f"{self.prometheus_url}/api/v1/query", params={"query": promql})
        return answer.json()  # type: ignore[no-any-return]


def sample(exposition: str, name: str, **labels: str) -> float:
    """The value of one sample of a /metrics page (0 when it is not there)."""
    for family in text_string_to_metric_families(exposition):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0


def wait_for(check: Callable[[], bool], what: str, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if check():
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


def _start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("w") as out:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)  # noqa: S603


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_stack(settings: Settings, tmp: Path) -> Iterator[Stack]:
    api_port, worker_port, prom_port = free_port(), free_port(), free_port()
    stack = Stack(
        api_url=f"http://127.0.0.1:{api_port}",
        worker_metrics_url=f"http://127.0.0.1:{worker_port}/metrics",
        prometheus_url=f"http://127.0.0.1:{prom_port}",
        api_metrics_dir=tmp / "api-metrics",
        worker_metrics_dir=tmp / "worker-metrics",
        api_log=tmp / "api.log",
        worker_log=tmp / "worker.log",
    )
    env = settings_env(settings)
    api = _start(
        [sys.executable, "-m", "api.serve", "--port", str(api_port)],
        {**env, "SYNTHGEN_API_WORKERS": "2", "SYNTHGEN_METRICS_DIR": str(stack.api_metrics_dir)},
        stack.api_log,
    )
    queues = ",".join(f"{settings.queue_prefix}{q}" for q in ("gpu", "cpu"))
    worker = _start(
        [sys.executable, "-m", "worker.serve", "worker", "-Q", queues, "--concurrency", "2",
         "--max-tasks-per-child", "1", "--loglevel", "INFO", "--without-gossip",
         "--without-mingle", "-n", f"obs-{api_port}@%h"],
        {**env, "SYNTHGEN_WORKER_METRICS_PORT": str(worker_port),
         "SYNTHGEN_METRICS_DIR": str(stack.worker_metrics_dir)},
        stack.worker_log,
    )  # fmt: skip
    config = tmp / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(ROOT / "deploy" / "prometheus" / "alerts.yml")],
                "scrape_configs": [
                    {"job_name": job, "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
                    for job, port in (("synthgen-api", api_port), ("synthgen-worker", worker_port))
                ],
            }
        )
    )
    prometheus = _start(
        [str(prometheus_bin()), f"--config.file={config}", f"--storage.tsdb.path={tmp / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{prom_port}"],
        dict(os.environ),
        tmp / "prometheus.log",
    )  # fmt: skip
    try:
        wait_for(lambda: httpx.get(f"{stack.api_url}/healthz").status_code == 200, "the API")
        # Each uvicorn worker writes its counter file when it imports the app.
        wait_for(
            lambda: len(list(stack.api_metrics_dir.glob("counter_*.db"))) == 2, "2 API workers"
        )
        wait_for(lambda: "ready." in stack.worker_log.read_text(), "the worker")
        wait_for(lambda: httpx.get(stack.worker_metrics_url).status_code == 200, "worker /metrics")
        wait_for(
            lambda: httpx.get(f"{stack.prometheus_url}/-/ready").status_code == 200, "Prometheus"
        )
        yield stack
    finally:
        for proc in (prometheus, worker, api):
            _stop(proc)
