"""An outcome's files as the runner stores them: bytes and local files go under the job's
prefix, objects the handler stored while it ran are recorded where they are; sizes are
known before anything is uploaded (the dataset card lists them)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from core.storage import StoredObject
from worker.context import JobContext
from worker.outcome import File
from worker.runner import store


class Store:
    def __init__(self) -> None:
        self.put: dict[str, tuple[bytes, str | None]] = {}

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> StoredObject:
        self.put[key] = (data, content_type)
        return StoredObject(key, len(data), content_type or "application/octet-stream")

    def put_file(self, key: str, path: Path, content_type: str | None = None) -> StoredObject:
        return self.put_bytes(key, path.read_bytes(), content_type)


def test_files_go_under_the_jobs_prefix_and_stored_ones_stay_where_they_are(tmp_path):
    storage = Store()
    job = SimpleNamespace(id="job-1", tenant_id="tenant-1")
    ctx = JobContext(None, storage, job, tmp_path, None, None)  # type: ignore[arg-type]
    local = tmp_path / "metrics.jsonl"
    local.write_bytes(b"{}\n")
    preview = StoredObject("datasets/ds_1/preview.png", 3, "image/png")
    files = [
        File("grid.png", b"png"),
        File("metrics.jsonl", local, "application/x-ndjson"),
        File("preview.png", preview),
    ]

    assert [f.size for f in files] == [3, 3, 3]
    objects = store(ctx, files)

    assert [(name, obj.key) for name, obj in objects] == [
        ("grid.png", "jobs/job-1/grid.png"),
        ("metrics.jsonl", "jobs/job-1/metrics.jsonl"),
        ("preview.png", "datasets/ds_1/preview.png"),
    ]
    assert storage.put == {
        "jobs/job-1/grid.png": (b"png", None),
        "jobs/job-1/metrics.jsonl": (b"{}\n", "application/x-ndjson"),
    }
