"""The object store goes away while a job writes; the worker's disk fills up."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from core import retention
from core.config import Settings
from core.storage import from_settings as storage_from_settings
from tests.faults.conftest import TERMINAL, Stack
from tests.faults.test_worker_faults import submit, train_body
from tests.servers import SeaweedFS, wait_for


@pytest.fixture()
def own_s3() -> Iterator[SeaweedFS]:
    """A SeaweedFS of this test's own, to stop and start again."""
    server = SeaweedFS()
    server.start()
    server.create_bucket("synthgen-s3-fault")
    yield server
    server.destroy()


def test_s3_down_mid_job_fails_it_with_a_storage_error_and_leaves_no_objects(
    stack: Stack, own_s3: SeaweedFS
):
    store = {
        "storage_url": "s3://synthgen-s3-fault/data",
        "s3_endpoint_url": own_s3.endpoint,
        "aws_access_key_id": own_s3.access_key,
        "aws_secret_access_key": own_s3.secret_key,
    }
    settings = Settings(**{**stack.settings.model_dump(), **store})
    storage = storage_from_settings(settings)
    stack.worker(**store)
    client = stack.tenant()
    job_id = submit(client, train_body("s3-down", max_steps=400, checkpoint_every=10))
    prefix = f"jobs/{job_id}/"
    wait_for(lambda: storage.list(prefix), 120, "a checkpoint written")

    own_s3.stop()
    done = stack.wait_job(job_id, TERMINAL)
    assert done.status == "failed"
    assert done.error["type"] == "StorageError"
    assert "attempts with backoff" in done.error["message"]
    assert client.get(f"/v1/jobs/{job_id}/artifacts").json()["items"] == []

    own_s3.start()
    assert storage.list(prefix)  # the worker could not delete them while the store was down
    counts = retention.sweep(settings=settings, storage=storage)
    assert counts["orphans"] >= 1
    assert storage.list(prefix) == []


@pytest.fixture()
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB filesystem (tmpfs) for the worker's work directory."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(directory: Path, leave_bytes: int) -> Path:
    """Fill the filesystem of ``directory`` up to ``leave_bytes`` free."""
    filler = directory / f"filler-{uuid.uuid4().hex[:6]}"
    with filler.open("wb") as out:
        free = subprocess.run(
            ["df", "--output=avail", "-B1", str(directory)], capture_output=True, text=True
        ).stdout.split()[-1]
        out.write(b"\0" * max(0, int(free) - leave_bytes))
    return filler


def test_disk_full_in_the_work_dir_fails_the_job_clearly_and_the_worker_stays_up(
    stack: Stack, small_disk: Path
):
    client = stack.tenant()
    worker = stack.worker(work_dir=small_disk)
    trained = submit(client, train_body("disk", max_steps=2))
    assert stack.wait_job(trained, TERMINAL).status == "succeeded"
    model_bytes = sum(o.size for o in stack.storage.list(f"jobs/{trained}/model/"))

    filler = fill(small_disk, leave_bytes=model_bytes + 64 * 1024)
    body = {"kind": "generate", "model": "disk", "count": 1000, "output_format": "npz"}
    too_big = submit(client, body)  # 1000 images of 8x8x3 need 192 kB, 64 kB are free
    done = stack.wait_job(too_big, TERMINAL)
    assert done.status == "failed"
    assert done.error["type"] == "DiskFull"

    filler.unlink()
    assert worker.proc.poll() is None
    again = submit(client, body)
    assert stack.wait_job(again, TERMINAL).status == "succeeded"
