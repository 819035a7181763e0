"""An uploaded dataset on a job's path: its row is read (and checked: the job's tenant's,
ready) once per job, however many of its facts the job needs; a refusal stops the job
before anything is fetched."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from core import catalog
from core.errors import DatasetNotFound
from worker.context import JobContext
from worker.datasets import load

DS = "ds_" + "a" * 32


class Rows:
    """``require_ready`` as the database answers it, counting the reads."""

    def __init__(self, refuse: bool = False) -> None:
        self.reads: list[tuple[str, str, str]] = []
        self.refuse = refuse

    def __call__(self, *, session, tenant_id: str, dataset_id: str, field: str):
        self.reads.append((tenant_id, dataset_id, field))
        if self.refuse:
            raise DatasetNotFound(f"{field}: no dataset {dataset_id} for this tenant", field=field)
        summary = {"image_shape": [1, 8, 8], "classes": ["circle", "square"]}
        return SimpleNamespace(id=dataset_id, name="signs", sha256="f" * 64, summary=summary)


class Store:
    """The object store holding the dataset's validated data.npz."""

    def __init__(self) -> None:
        self.fetched: list[str] = []

    def get_file(self, key: str, path: Path) -> None:
        self.fetched.append(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        labels = np.array([0, 1, 0, 1], dtype=np.int64)
        np.savez(
            path,
            images=np.zeros((4, 1, 8, 8), dtype=np.uint8),
            labels=labels,
            classes=np.array(["circle", "square"]),
            split=np.array([0, 0, 0, 1], dtype=np.uint8),
        )


@contextmanager
def no_session(url: str):
    yield None


def job_context(tmp_path: Path, store: Store) -> JobContext:
    settings = SimpleNamespace(database_url="postgresql://unused", data_root=None)
    job = SimpleNamespace(id="job-1", tenant_id="tenant-1")
    return JobContext(settings, store, job, tmp_path, None, None)  # type: ignore[arg-type]


@pytest.fixture
def rows(monkeypatch) -> Rows:
    found = Rows()
    monkeypatch.setattr(load, "session_scope", no_session)
    monkeypatch.setattr(load.datasets, "require_ready", found)
    return found


def test_the_train_path_reads_the_dataset_row_once(rows, tmp_path):
    store = Store()
    ctx = job_context(tmp_path, store)
    # What worker/train.py asks, in its order: the image size, the data, the lineage.
    size = load.default_image_size(ctx, DS)
    data = load.load(ctx, DS, "train", size)
    lineage = load.describe(ctx, DS)

    assert size == 8 and len(data) == 3 and data.class_names == ["circle", "square"]
    assert lineage == {"id": DS, "name": "signs", "sha256": "f" * 64}
    assert rows.reads == [("tenant-1", DS, "dataset")]
    assert store.fetched == [f"datasets/{DS}/data.npz"]


def test_each_job_reads_the_row_itself(rows, tmp_path):
    for job in ("first", "second"):
        ctx = job_context(tmp_path / job, Store())
        assert load.class_names(ctx, DS) == ["circle", "square"]
        assert load.class_names(ctx, DS) == ["circle", "square"]
    assert rows.reads == [("tenant-1", DS, "reference")] * 2


def test_a_refused_dataset_stops_the_job_before_any_fetch(monkeypatch, tmp_path):
    monkeypatch.setattr(load, "session_scope", no_session)
    monkeypatch.setattr(load.datasets, "require_ready", Rows(refuse=True))
    store = Store()
    ctx = job_context(tmp_path, store)
    with pytest.raises(DatasetNotFound, match="reference: no dataset"):
        load.load(ctx, DS, "test", None, field="reference")
    assert store.fetched == []


def test_a_built_in_dataset_reads_no_row(rows, tmp_path):
    ctx = job_context(tmp_path, Store())
    assert load.describe(ctx, "digits") == {"builtin": True}
    assert load.default_image_size(ctx, "digits") == catalog.DEFAULT_IMAGE_SIZE["digits"]
    assert rows.reads == []
