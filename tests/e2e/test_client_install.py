"""The SDK and CLI as their own distribution: `pip install ./clients/python` into a fresh
virtualenv puts one package in it (no `api`, `core`, `models`, `worker`), and its
`synthgen` talks to a running stack."""

from __future__ import annotations

import json
import subprocess
import venv
from pathlib import Path

import pytest

from tests.e2e.conftest import ROOT, clean_env
from tests.e2e.test_cli import TINY_TRAIN

SERVER_PACKAGES = {"api", "core", "models", "worker", "client"}


@pytest.fixture(scope="module")
def client_venv(tmp_path_factory) -> Path:
    env_dir = tmp_path_factory.mktemp("client-only") / "venv"
    venv.create(env_dir, with_pip=True)
    done = subprocess.run(
        [env_dir / "bin" / "pip", "install", "--quiet", "--no-compile",
         str(ROOT / "clients" / "python")],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return env_dir


def test_the_client_distribution_installs_only_its_own_package(client_venv):
    site = next((client_venv / "lib").glob("python3*/site-packages"))
    top_level = {p.name for p in site.iterdir() if (p / "__init__.py").is_file()}
    assert "synthgen_client" in top_level
    assert not top_level & SERVER_PACKAGES
    probe = "import importlib.util as u; print([n for n in ('torch','fastapi') if u.find_spec(n)])"
    found = subprocess.run([client_venv / "bin" / "python", "-c", probe], capture_output=True,
                           text=True, check=True)  # fmt: skip
    assert found.stdout.strip() == "[]"


def test_server_commands_say_they_need_the_server(client_venv, tmp_path):
    done = subprocess.run([client_venv / "bin" / "synthgen", "up"], cwd=tmp_path,
                          env=clean_env(), capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 2
    assert "needs the synthgen server installed" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_client_only_cli_submits_and_waits_against_a_running_stack(client_venv, shared_stack):
    env = {**clean_env(), "SYNTHGEN_API_URL": shared_stack.url,
           "SYNTHGEN_API_KEY": shared_stack.key}  # fmt: skip
    cli = str(client_venv / "bin" / "synthgen")
    submitted = subprocess.run(
        [cli, "jobs", "submit", "-", "--json"],
        env=env,
        input=json.dumps(TINY_TRAIN),
        capture_output=True,
        text=True,
    )
    assert submitted.returncode == 0, submitted.stderr
    job_id = json.loads(submitted.stdout)["id"]
    waited = subprocess.run([cli, "jobs", "wait", job_id, "-q", "--json"], env=env,
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert waited.returncode == 0, waited.stderr
    assert json.loads(waited.stdout)["status"] == "succeeded"
