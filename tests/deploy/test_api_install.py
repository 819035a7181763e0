"""`pip install synthgen[api]` into a fresh virtualenv, from the package index: the
requirement set holds no torch, and the API starts and serves a job submission with two
uvicorn workers, migrated and keyed by the `synthgen` CLI of that same install. The
sources copied are those Dockerfile.api copies, so this is the API image's install."""

import json
import os
import shutil
import subprocess
import time
import venv

import httpx
import pytest

from tests.servers import free_port
from tests.tools import ROOT

IMAGE_SOURCES = (
    "pyproject.toml",
    "README.md",
    "alembic.ini",
    "api",
    "core",
    "models/__init__.py",
    "models/engine_options",
    "clients",
    "migrations",
    "errors",
)
WORKER_ONLY = {"torch", "torchvision", "diffusers", "safetensors", "scikit-learn", "triton"}
TRAIN_JOB = {"kind": "train", "engine": "ddpm", "dataset": "digits", "model_name": "m"}


@pytest.fixture(scope="module")
def api_venv(tmp_path_factory):
    base = tmp_path_factory.mktemp("api-extra")
    src = base / "src"
    src.mkdir()
    for name in IMAGE_SOURCES:
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy2
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        copy(ROOT / name, src / name)
    env_dir = base / "venv"
    venv.create(env_dir, with_pip=True)
    done = subprocess.run(
        [env_dir / "bin" / "pip", "install", "--quiet", "--no-compile", "-e", f"{src}[api]"],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return env_dir


def test_api_extra_installs_no_worker_packages(api_venv):
    listed = subprocess.run(
        [api_venv / "bin" / "pip", "list", "--format=json"],
        capture_output=True,
        text=True,
        check=True,
    )
    names = {p["name"].lower().replace("_", "-") for p in json.loads(listed.stdout)}
    assert {"fastapi", "uvicorn", "prometheus-client"} <= names
    assert not names & WORKER_ONLY
    assert not [n for n in names if n.startswith("nvidia-")]


def test_api_extra_serves_a_submission_without_torch(api_venv, tmp_path):
    python = str(api_venv / "bin" / "python")
    assert subprocess.run([python, "-c", "import torch"], capture_output=True).returncode != 0
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SYNTHGEN_", "PYTHON"))}
    env |= {
        "SYNTHGEN_DATABASE_URL": f"sqlite:///{tmp_path}/synthgen.db",
        "SYNTHGEN_BROKER_URL": f"sqla+sqlite:///{tmp_path}/broker.db",
        "SYNTHGEN_STORAGE_URL": f"file://{tmp_path}/store",
        "SYNTHGEN_API_WORKERS": "2",
    }
    cli = str(api_venv / "bin" / "synthgen")
    subprocess.run([cli, "db", "upgrade"], env=env, cwd=tmp_path, check=True, capture_output=True)
    created = subprocess.run(
        [cli, "keys", "create", "--tenant", "t"],
        env=env,
        cwd=tmp_path,
        check=True,
        capture_output=True,
        text=True,
    )
    key = created.stdout.strip().splitlines()[-1]
    port = free_port()
    log = (tmp_path / "api.log").open("w")
    server = subprocess.Popen(  # noqa: S603
        [python, "-m", "api.serve", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, (
                "API did not start:\n" + (tmp_path / "api.log").read_text()[-3000:]
            )
            time.sleep(0.3)
        submitted = httpx.post(
            f"{url}/v1/jobs", json=TRAIN_JOB, headers={"Authorization": f"Bearer {key}"}
        )
        assert submitted.status_code == 201, submitted.text
        assert submitted.headers["x-request-id"]
        exposition = httpx.get(f"{url}/metrics").text
        assert 'synthgen_jobs_submitted_total{kind="train"} 1.0' in exposition
    finally:
        server.terminate()  # uvicorn's supervisor stops its workers on SIGTERM
        server.wait(timeout=30)
        log.close()
