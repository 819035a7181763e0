"""`synthgen up` with no services: SQLite, a SQLite-backed broker, the local store, a
worker child process. A real train → generate job, downloads through signed URLs."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx

from tests.e2e.conftest import ROOT, free_port, output_of
from tests.e2e.test_cli import TINY_TRAIN


def test_embedded_stack_trains_and_generates(stack):
    from synthgen_client.sdk import Client

    url, key, home = stack
    client = Client(url, key)
    train = client.submit(
        {
            "kind": "train",
            "engine": "ddpm",
            "dataset": "shapes",
            "model_name": "e2e",
            "config": {"max_steps": 4, "batch_size": 8, "image_size": 8, "base_channels": 16},
        }
    )
    assert client.wait(train["id"], poll_s=0.3, timeout_s=240)["status"] == "succeeded"
    gen = client.submit(
        {
            "kind": "generate",
            "model": "e2e",
            "count": 12,
            "config": {"steps": 2},
            "output_format": "npz",
        }
    )
    done = client.wait(gen["id"], poll_s=0.3, timeout_s=240)
    assert done["status"] == "succeeded", done["error"]
    items = {a["name"]: a for a in client.artifacts(gen["id"])}
    assert set(items) == {"images.npz", "grid.png", "manifest.csv", "README.md", "croissant.json"}
    body = httpx.get(items["grid.png"]["url"]).content  # signed URL, no key
    assert body[:8] == b"\x89PNG\r\n\x1a\n"
    assert (home / "store" / "jobs" / gen["id"] / "images.npz").is_file()
    tampered = items["grid.png"]["url"].replace("signature=", "signature=0")
    assert httpx.get(tampered).status_code == 404


def test_up_says_once_that_it_runs_as_root_instead_of_celerys_warning_per_worker(stack):
    from synthgen_client.embedded import ROOT_NOTE
    from synthgen_client.sdk import Client

    url, key, home = stack
    client = Client(url, key)
    train = client.submit({**TINY_TRAIN, "model_name": "root"})
    assert client.wait(train["id"], poll_s=0.3, timeout_s=240)["status"] == "succeeded"
    client.preview("root", steps=2)  # both workers (jobs; previews) are up by now
    printed = output_of(home)
    assert "superuser privileges" not in printed  # Celery's warning, once per worker
    as_root = hasattr(os, "geteuid") and os.geteuid() == 0
    assert printed.count(ROOT_NOTE) == (1 if as_root else 0), printed


def test_up_stops_with_the_workers_status_when_the_worker_dies(tmp_path):
    # The real `run`, with a worker that fails at start-up as a broken install would.
    script = (
        "import sys; from pathlib import Path; from synthgen_client import embedded\n"
        "embedded.worker_command = lambda home: "
        "[sys.executable, '-c', 'import sys; sys.exit(\"worker: cannot connect\")']\n"
        f"sys.exit(embedded.run(Path({str(tmp_path / 'home')!r}), '127.0.0.1', {free_port()}))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNTHGEN_")}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "worker: cannot connect" in done.stderr
    assert "the worker exited with status 1" in done.stderr
    assert "jobs submitted now would never run" in done.stderr
