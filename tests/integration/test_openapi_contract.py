"""The OpenAPI document is one real tools accept: openapi-python-client generates a client
that submits a job, and schemathesis (`--checks all`) finds no server error and no answer
that contradicts the document, fuzzing the live API under uvicorn."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from core.config import Settings
from core.db import session_scope
from core.jobs import transitions
from core.jobs.orm import Job
from core.jobs.states import JobStatus
from core.tenants import service as tenants
from core.tenants.orm import Tenant
from tests.integration.conftest import TINY_DDPM, TenantClient
from tests.servers import ROOT, VENV_BIN, Process, free_port, wait_http

pytestmark = pytest.mark.integration


def test_generated_client_submits_and_reads_a_job(app_client, tenant: TenantClient, tmp_path):
    spec = tmp_path / "openapi.json"
    spec.write_text(json.dumps(app_client.app.openapi()))
    env = {**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}"}
    # Its own package name: by default it would be `synthgen_client`, our SDK's, which an
    # earlier test may have imported already.
    config = tmp_path / "generator.json"
    config.write_text(
        json.dumps(
            {
                "project_name_override": "generated-synthgen",
                "package_name_override": "generated_synthgen",
            }
        )
    )
    subprocess.run(
        [str(VENV_BIN / "openapi-python-client"), "generate", "--path", str(spec),
         "--config", str(config), "--output-path", str(tmp_path / "client")],
        check=True, env=env, capture_output=True,
    )  # fmt: skip
    sys.path.insert(0, str(tmp_path / "client"))
    try:
        generated = importlib.import_module("generated_synthgen")
        submit = importlib.import_module("generated_synthgen.api.jobs.submit_job")
        get = importlib.import_module("generated_synthgen.api.jobs.get_job")
        models = importlib.import_module("generated_synthgen.models")
        client = generated.AuthenticatedClient(base_url="http://testserver", token=tenant.key)
        client.set_httpx_client(app_client)
        app_client.headers["Authorization"] = f"Bearer {tenant.key}"
        body = models.TrainDDPM(
            kind="train", engine="ddpm", dataset="shapes", model_name="generated",
            config=models.DDPMConfig.from_dict(TINY_DDPM),
        )  # fmt: skip
        created = submit.sync_detailed(client=client, body=body)
        assert created.status_code == 201, created.content
        job = created.parsed
        assert job.status == models.JobStatus.QUEUED and job.attempts == 0
        again = get.sync(job_id=job.id, client=client)
        assert again.id == job.id and again.request["model_name"] == "generated"
    finally:
        app_client.headers.pop("Authorization", None)
        sys.path.remove(str(tmp_path / "client"))
        for name in [m for m in sys.modules if m.startswith("generated_synthgen")]:
            del sys.modules[name]


@pytest.fixture()
def live_api(settings: Settings, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """The API under uvicorn, on a queue no worker reads (fuzzed jobs never run)."""
    env = {
        **os.environ,
        "SYNTHGEN_DATABASE_URL": settings.database_url,
        "SYNTHGEN_BROKER_URL": settings.broker_url,
        "SYNTHGEN_STORAGE_URL": settings.storage_url,
        "SYNTHGEN_S3_ENDPOINT_URL": settings.s3_endpoint_url or "",
        "AWS_ACCESS_KEY_ID": settings.aws_access_key_id or "",
        "AWS_SECRET_ACCESS_KEY": settings.aws_secret_access_key or "",
        "SYNTHGEN_QUEUE_PREFIX": "fuzz-nobody-",
        "SYNTHGEN_RATE_LIMIT_PER_S": "10000",
        "SYNTHGEN_RATE_LIMIT_BURST": "10000",
    }
    port = free_port()
    args = [sys.executable, "-m", "uvicorn", "api.main:app", "--port", str(port)]
    proc = Process(args, env, tmp_path / "api.log")
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/healthz")
    with session_scope(settings.database_url) as session:
        key = tenants.create_key(session=session, tenant_name="fuzz")
    yield url, key
    proc.stop()
    # The jobs the fuzzer made share the test database: cancel them, or a reconciler run
    # in a later test would publish them to the shared worker's queue.
    with session_scope(settings.database_url) as session:
        fuzz = session.scalar(select(Tenant.id).where(Tenant.name == "fuzz"))
        for job_id in session.scalars(
            select(Job.id).where(
                Job.tenant_id == fuzz, Job.status.in_([JobStatus.queued, JobStatus.running])
            )
        ).all():
            transitions.try_transition(session=session, job_id=job_id, target=JobStatus.canceled)


def test_schemathesis_finds_no_server_error_and_no_contradiction(live_api, tmp_path):
    url, key = live_api
    done = subprocess.run(
        [str(VENV_BIN / "schemathesis"), "--config-file", str(ROOT / "tests/schemathesis.toml"),
         "run", f"{url}/openapi.json", "-H", f"Authorization: Bearer {key}", "--checks", "all",
         "--max-examples", "40", "--seed", "12", "--no-color"],
        capture_output=True, text=True, timeout=400, cwd=tmp_path,  # its cache stays there
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-6000:]
