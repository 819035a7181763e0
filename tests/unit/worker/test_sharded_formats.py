"""The parquet and webdataset outputs, read back by the libraries users load them with."""

import json

import numpy as np
import pytest
from PIL import Image

from core.storage import LocalStorage
from worker import formats

CLASSES = ["zero", "one", "two"]


@pytest.fixture()
def store(tmp_path):
    return LocalStorage(root=tmp_path / "store", public_url="http://h", signing_secret="s")


def _write(store, workdir, fmt, total=25, shard_samples=10, shape=(1, 8, 8), shard_bytes=2**30):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (total, *shape), dtype=np.uint8)
    labels = np.arange(total) % 3
    target = formats.Target(
        store, "jobs/j", workdir, total, shape, CLASSES, "mv-1", shard_bytes, shard_samples
    )
    writer = formats.writer(fmt, target)
    for start in range(0, total, 7):  # shards of the job cut across shards of the format
        part = slice(start, start + 7)
        writer.add(images[part], labels[part], np.full(len(labels[part]), 100 + start))
    objects = dict(writer.finish())
    return writer, objects, images, labels


def _pixels(image: Image.Image) -> np.ndarray:
    array = np.asarray(image)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def test_parquet_shards_load_in_datasets_with_image_and_class_label(store, tmp_path):
    import datasets

    writer, objects, images, labels = _write(store, tmp_path, "parquet")
    shards = sorted(name for name in objects if name.startswith("data/"))
    assert shards == [f"data/train-{i:05d}.parquet" for i in range(3)]
    assert writer.location == "data/train-{00000..00002}.parquet"
    files = [str(store.path_of(objects[name].key)) for name in shards]
    ds = datasets.load_dataset("parquet", data_files=files, split="train", cache_dir=tmp_path / "c")
    assert isinstance(ds.features["image"], datasets.Image)
    assert isinstance(ds.features["label"], datasets.ClassLabel)
    assert ds.features["label"].names == CLASSES
    assert len(ds) == 25
    row = ds[13]
    np.testing.assert_array_equal(_pixels(row["image"]), images[13])
    assert (row["label"], row["index"], row["model_version"]) == (1, 13, "mv-1")
    assert row["seed"] == 107  # the seed of the add() call (job shard) it came in
    assert ds["index"] == list(range(25))
    assert ds["label"] == labels.tolist()


def test_parquet_shards_close_at_the_byte_bound(store, tmp_path):
    # Each 8x8 PNG is well over 50 bytes: every image fills a shard of its own.
    _, objects, _, _ = _write(store, tmp_path, "parquet", total=4, shard_bytes=50)
    assert sorted(n for n in objects if n.startswith("data/")) == [
        f"data/train-{i:05d}.parquet" for i in range(4)
    ]


def test_webdataset_shards_stream_through_the_webdataset_pipeline(store, tmp_path):
    import webdataset as wds

    writer, objects, images, labels = _write(store, tmp_path, "webdataset", shape=(3, 5, 6))
    assert writer.location == "webdataset/train-{000000..000002}.tar"
    root = store.path_of("jobs/j")
    pipeline = (
        wds.WebDataset(f"{root}/{writer.location}", shardshuffle=False, empty_check=False)
        .decode("pil")
        .to_tuple("__key__", "png", "cls", "json")
    )
    got = list(pipeline)
    assert [key for key, *_ in got] == [f"{i:06d}" for i in range(25)]
    for i, (_, image, label, meta) in enumerate(got):
        np.testing.assert_array_equal(_pixels(image), images[i])
        assert label == labels[i]
        assert meta["class_name"] == CLASSES[labels[i]]
        assert (meta["index"], meta["model_version"]) == (i, "mv-1")
        assert meta["seed"] == 100 + 7 * (i // 7)


def test_webdataset_shards_hold_at_most_shard_samples(store, tmp_path):
    import tarfile

    _, objects, _, _ = _write(store, tmp_path, "webdataset")
    counts = []
    for name in sorted(n for n in objects if n.startswith("webdataset/")):
        with tarfile.open(store.path_of(objects[name].key)) as tar:
            counts.append(sum(m.name.endswith(".png") for m in tar.getmembers()))
    assert counts == [10, 10, 5]


@pytest.mark.parametrize("fmt", ["parquet", "webdataset"])
def test_manifest_names_the_shard_and_place_of_each_image(store, tmp_path, fmt):
    _write(store, tmp_path, fmt)
    rows = store.get_bytes("jobs/j/manifest.csv").decode().splitlines()[1:]
    files = [row.split(",")[1] for row in rows]
    assert files[9] != files[10] and files[0] == files[9]
    assert json.dumps(files[0]).strip('"').endswith((".parquet", ".tar"))
