"""Parquet and WebDataset uploads, made by the libraries that write them, read back by
the validation job's reader under the same limits as an ImageFolder archive."""

from __future__ import annotations

import io

import numpy as np
import pytest

from tests import archives
from worker.datasets.archive import FileTooLarge, Limits, TooManyFiles
from worker.datasets.formats import BadLayout, ImageTooLarge, Options, read

LIMITS = Limits(upload_bytes=10**8, expanded_bytes=4 * 2**20, files=100, file_bytes=2**20)


def options(**changes):
    base = {"limits": LIMITS, "max_pixels": 10_000, "max_side": 64, "skip_corrupt": False}
    return Options(**{**base, **changes})


def read_upload(tmp_path, fmt, data, **changes):
    path = archives.write(tmp_path / "upload", data)
    return read(fmt, path, tmp_path, options(**changes), lambda done, total: None)


def pixels(images) -> np.ndarray:
    return np.fromfile(images.path, dtype=np.uint8).reshape(images.count, *images.shape)


def hf_parquet(labels, names=("cat", "dog", "eel"), side=8) -> bytes:
    """A Parquet file as Hugging Face datasets writes one (Image and ClassLabel features)."""
    import datasets
    from PIL import Image

    images = [Image.fromarray(np.full((side, side), 10 * i, np.uint8)) for i in range(len(labels))]
    features = datasets.Features(
        {"image": datasets.Image(), "label": datasets.ClassLabel(names=list(names))}
    )
    ds = datasets.Dataset.from_dict({"image": images, "label": labels}, features=features)
    buffer = io.BytesIO()
    ds.to_parquet(buffer)
    return buffer.getvalue()


def wds_shard(labels, names=None, side=8, start=0) -> bytes:
    """A WebDataset shard written by webdataset's own TarWriter."""
    import webdataset as wds

    buffer = io.BytesIO()
    with wds.TarWriter(buffer) as sink:
        for i, label in enumerate(labels):
            sample = {
                "__key__": f"s{start + i:05d}",
                "png": archives.png(10 * (start + i), (side, side)),
                "cls": label,
            }
            if names:
                sample["json"] = {"class_name": names[label]}
            sink.write(sample)
    return buffer.getvalue()


def test_a_datasets_parquet_keeps_its_class_label_names_and_order(tmp_path):
    images = read_upload(tmp_path, "parquet", hf_parquet([2, 0, 2, 1]))
    assert images.classes == ["cat", "dog", "eel"]
    assert images.labels.tolist() == [2, 0, 2, 1]
    assert images.shape == (1, 8, 8)
    assert pixels(images)[:, 0, 0, 0].tolist() == [0, 10, 20, 30]


def test_parquet_shards_in_a_zip_are_read_in_name_order(tmp_path):
    files = {"data/train-0.parquet": hf_parquet([0, 1]), "data/train-1.parquet": hf_parquet([2])}
    images = read_upload(tmp_path, "parquet", archives.zip_bytes(files))
    assert images.count == 3 and images.labels.tolist() == [0, 1, 2]


def test_a_parquet_with_a_string_label_column_gets_sorted_classes(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"image": [archives.png(5), archives.png(9)], "label": ["zebra", "ant"]})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    images = read_upload(tmp_path, "parquet", buffer.getvalue())
    assert images.classes == ["ant", "zebra"]
    assert images.labels.tolist() == [1, 0]


def test_a_parquet_without_a_label_column_is_refused_naming_what_it_has(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(pa.table({"image": [archives.png(5)], "target": [0]}), buffer)
    with pytest.raises(BadLayout, match="no label column.*image, target"):
        read_upload(tmp_path, "parquet", buffer.getvalue())


def test_parquet_rows_count_against_the_file_limit(tmp_path):
    with pytest.raises(TooManyFiles, match="more than 3 images"):
        read_upload(
            tmp_path,
            "parquet",
            hf_parquet([0, 1, 2, 0]),
            limits=Limits(10**8, 2**20, 3, 2**20),
        )


def test_a_parquet_image_over_the_pixel_limit_is_refused(tmp_path):
    with pytest.raises(ImageTooLarge):
        read_upload(tmp_path, "parquet", hf_parquet([0], side=120))


def test_a_webdataset_shard_gets_labels_from_cls_and_names_from_json(tmp_path):
    images = read_upload(tmp_path, "webdataset", wds_shard([1, 0, 1], names=["no", "yes"]))
    assert images.classes == ["no", "yes"]
    assert images.labels.tolist() == [1, 0, 1]
    assert pixels(images)[:, 0, 0, 0].tolist() == [0, 10, 20]


def test_webdataset_shards_in_a_tar_are_one_dataset(tmp_path):
    files = {
        "shards/a-000000.tar": wds_shard([0, 1]),
        "shards/a-000001.tar": wds_shard([2], start=2),
    }
    images = read_upload(tmp_path, "webdataset", archives.tar_bytes(files))
    assert images.classes == ["0", "1", "2"]
    assert images.labels.tolist() == [0, 1, 2]


def test_a_webdataset_sample_without_a_label_is_refused(tmp_path):
    data = archives.tar_bytes({"k1.png": archives.png(1), "k1.txt": b"hello"}, mode="w")
    with pytest.raises(BadLayout, match="sample k1 has no integer label"):
        read_upload(tmp_path, "webdataset", data)


def test_a_webdataset_image_over_the_file_limit_is_refused(tmp_path):
    with pytest.raises(FileTooLarge):
        read_upload(tmp_path, "webdataset", wds_shard([0]), limits=Limits(10**8, 2**20, 100, 10))
