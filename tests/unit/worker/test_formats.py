import csv
import hashlib
import io
import threading
import time
import zipfile

import numpy as np
import pytest
from PIL import Image

from core.config import Settings
from core.storage import LocalStorage
from worker import formats
from worker.images import GridCollector
from worker.sampling import label_plan, shard_seed


@pytest.fixture()
def store(tmp_path):
    return LocalStorage(root=tmp_path / "store", public_url="http://h", signing_secret="s")


def _writer(store, workdir, fmt, class_names, count=0, shape=(1, 8, 8)):
    target = formats.Target(store, "jobs/j", workdir, count, shape, class_names)
    return formats.writer(fmt, target)


def _shards(rng, total, size, shape=(1, 8, 8)):
    for start in range(0, total, size):
        n = min(size, total - start)
        yield rng.integers(0, 256, (n, *shape), dtype=np.uint8), np.arange(start, start + n) % 3


def test_npz_written_shard_by_shard_loads_whole(store, tmp_path):
    rng = np.random.default_rng(0)
    shards = list(_shards(rng, 25, 10))
    writer = _writer(store, tmp_path, "npz", ["a", "b", "c"], 25)
    for images, labels in shards:
        writer.add(images, labels)
    objects = dict(writer.finish())
    assert set(objects) == {"images.npz", "manifest.csv"}
    data = np.load(io.BytesIO(store.get_bytes(objects["images.npz"].key)))
    np.testing.assert_array_equal(data["images"], np.concatenate([s[0] for s in shards]))
    np.testing.assert_array_equal(data["labels"], np.arange(25) % 3)
    assert data["class_names"].tolist() == ["a", "b", "c"]


def test_imagefolder_zip_has_one_folder_per_class(store, tmp_path):
    writer = _writer(store, tmp_path, "imagefolder", ["zero", "one", "two"])
    for images, labels in _shards(np.random.default_rng(1), 7, 3):
        writer.add(images, labels)
    objects = dict(writer.finish())
    assert set(objects) == {"images.zip", "manifest.csv"}
    names = zipfile.ZipFile(io.BytesIO(store.get_bytes(objects["images.zip"].key))).namelist()
    assert sorted(names) == sorted(f"{['zero', 'one', 'two'][i % 3]}/{i:06d}.png" for i in range(7))


def test_png_writer_uploads_every_image_and_a_labels_csv(store, tmp_path):
    writer = _writer(store, tmp_path, "png", ["a", "b", "c"])
    for images, labels in _shards(np.random.default_rng(2), 5, 2, shape=(3, 4, 4)):
        writer.add(images, labels)
    objects = dict(writer.finish())
    pngs = {f"images/{i:06d}.png" for i in range(5)}
    assert set(objects) == pngs | {"labels.csv", "manifest.csv"}
    img = Image.open(io.BytesIO(store.get_bytes("jobs/j/images/000004.png")))
    assert img.size == (4, 4) and img.mode == "RGB"
    assert store.get_bytes("jobs/j/labels.csv").decode().splitlines()[1] == "images/000000.png,0,a"


def _manifest(store) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(store.get_bytes("jobs/j/manifest.csv").decode())))


def _sha(data: bytes) -> tuple[str, str]:
    return hashlib.sha256(data).hexdigest(), str(len(data))


def test_png_manifest_lists_every_file_with_its_label_and_checksum(store, tmp_path):
    writer = _writer(store, tmp_path, "png", ["a", "b", "c"])
    for images, labels in _shards(np.random.default_rng(3), 5, 2):
        writer.add(images, labels)
    writer.finish()
    rows = _manifest(store)
    assert [(r["index"], r["file"], r["member"]) for r in rows] == [
        (str(i), f"images/{i:06d}.png", "") for i in range(5)
    ]
    assert [(r["label"], r["class_name"]) for r in rows] == [
        (str(i % 3), "abc"[i % 3]) for i in range(5)
    ]
    for r in rows:
        assert (r["sha256"], r["size"]) == _sha(store.get_bytes(f"jobs/j/{r['file']}"))


def test_npz_manifest_checksums_each_row_of_the_images_array(store, tmp_path):
    writer = _writer(store, tmp_path, "npz", ["a", "b", "c"], 7)
    for images, labels in _shards(np.random.default_rng(4), 7, 3):
        writer.add(images, labels)
    writer.finish()
    data = np.load(io.BytesIO(store.get_bytes("jobs/j/images.npz")))
    rows = _manifest(store)
    assert [(r["file"], r["member"]) for r in rows] == [
        ("images.npz", f"images[{i}]") for i in range(7)
    ]
    for i, r in enumerate(rows):
        assert (r["sha256"], r["size"]) == _sha(data["images"][i].tobytes())
        assert int(r["label"]) == data["labels"][i]


def test_imagefolder_manifest_names_each_zip_member(store, tmp_path):
    writer = _writer(store, tmp_path, "imagefolder", ["zero", "one", "two"])
    for images, labels in _shards(np.random.default_rng(5), 4, 3):
        writer.add(images, labels)
    writer.finish()
    archive = zipfile.ZipFile(io.BytesIO(store.get_bytes("jobs/j/images.zip")))
    rows = _manifest(store)
    assert [r["member"] for r in rows] == [
        f"{['zero', 'one', 'two'][i % 3]}/{i:06d}.png" for i in range(4)
    ]
    for r in rows:
        assert r["file"] == "images.zip"
        assert (r["sha256"], r["size"]) == _sha(archive.read(r["member"]))
        assert r["member"].startswith(r["class_name"] + "/")


def test_grid_keeps_the_first_images_of_each_class():
    grid = GridCollector(num_classes=2, per_class=3)
    grid.add(np.full((6, 1, 4, 4), 7, np.uint8), np.array([0, 0, 0, 0, 1, 1]))
    assert [len(v) for v in grid.slots.values()] == [3, 2]
    assert Image.open(io.BytesIO(grid.png())).format == "PNG"


def test_label_plan_covers_each_request_form():
    assert label_plan(None, 5, 3, True).tolist() == [0, 1, 2, 0, 1]
    assert label_plan([2, 2, 1], 3, 3, True).tolist() == [2, 2, 1]
    assert label_plan([4], 3, 5, True).tolist() == [4, 4, 4]
    assert label_plan(None, 3, 3, False) is None


def test_shards_get_distinct_reproducible_seeds():
    assert shard_seed(0, 0) != shard_seed(0, 1)
    assert shard_seed(5, 2) == shard_seed(5, 2)


def test_time_budget_drives_the_fraction_when_it_binds(monkeypatch):
    from worker import progress as progress_mod

    # progress_mod.time is the time module itself: only this thread reads the fake clock,
    # so a background thread of an earlier test (a dispatcher, a pool) cannot use it up.
    clock, real, here = iter([0.0, 30.0, 30.0, 30.0]), time.monotonic, threading.get_ident()
    fake = lambda: next(clock) if threading.get_ident() == here else real()  # noqa: E731
    monkeypatch.setattr(progress_mod.time, "monotonic", fake)
    settings = Settings(database_url="sqlite://")
    p = progress_mod.JobProgress(settings, "job", stage="train", min_interval_s=1e9)
    p.max_seconds = 60.0
    p.last_write = 30.0
    p(5, 100_000, loss=0.5)
    assert p.last["fraction"] == 0.5
    assert p.last["eta_seconds"] == 30.0


@pytest.mark.parametrize("fmt", sorted(formats.FORMATS))
@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 6, 5)])
def test_each_format_reads_back_what_it_wrote_in_order(store, tmp_path, fmt, shape):
    rng = np.random.default_rng(6)
    # Class names a folder cannot hold as they are: the reader must map them back.
    names = ["a/b", "c d", ".."]
    shards = list(_shards(rng, 11, 4, shape=shape))
    (tmp_path / "w").mkdir()
    writer = _writer(store, tmp_path / "w", fmt, names, 11, shape)
    for images, labels in shards:
        writer.add(images, labels)
    writer.finish()
    (tmp_path / "r").mkdir()
    source = formats.Source(store, "jobs/j", tmp_path / "r", names, count=None, batch=3)
    batches, total = formats.read(fmt, source)
    got = list(batches)
    assert total == 11
    assert [len(labels) for _, labels in got] == [3, 3, 3, 2]
    np.testing.assert_array_equal(
        np.concatenate([images for images, _ in got]), np.concatenate([s[0] for s in shards])
    )
    np.testing.assert_array_equal(np.concatenate([labels for _, labels in got]), np.arange(11) % 3)
    assert all(images.dtype == np.uint8 and labels.dtype == np.int64 for images, labels in got)


@pytest.mark.parametrize("fmt", sorted(formats.FORMATS))
def test_a_reader_stops_at_count(store, tmp_path, fmt):
    writer = _writer(store, tmp_path, fmt, ["a", "b", "c"], 9)
    for images, labels in _shards(np.random.default_rng(7), 9, 4):
        writer.add(images, labels)
    writer.finish()
    source = formats.Source(store, "jobs/j", tmp_path, ["a", "b", "c"], count=5, batch=64)
    batches, total = formats.read(fmt, source)
    assert total == 5
    assert [len(labels) for _, labels in batches] == [5]


def test_every_output_format_a_request_may_name_has_a_writer_and_a_reader():
    from typing import get_args

    from core.jobs.schemas import GenerateJobIn, Txt2ImgJobIn

    for schema in (GenerateJobIn, Txt2ImgJobIn):
        named = set(get_args(schema.model_fields["output_format"].annotation))
        assert named == set(formats.FORMATS), schema.__name__
    for module in formats.FORMATS.values():
        assert callable(module.Writer) and callable(module.read)
