"""Specification of the datasets: names become uint8 images and int64 labels."""

from __future__ import annotations

import gzip
import io
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from models import datasets
from tests.unit.models.conftest import MNIST_T10K

needs_t10k = pytest.mark.skipif(
    not Path(MNIST_T10K, "t10k-images-idx3-ubyte.gz").is_file(), reason="shared t10k files absent"
)


def _keys(data: datasets.ImageDataset) -> set[bytes]:
    return {image.numpy().tobytes() for image in data.images}


def test_importing_datasets_loads_neither_torch_nor_numpy():
    code = "import sys, models.datasets as d; d.parse_reference('digits:test'); "
    code += "print('torch' in sys.modules, 'numpy' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["False", "False"]


def test_builtin_names_and_splits_are_listed():
    assert datasets.names() == sorted(datasets.BUILTIN_SPLITS)
    assert {"digits", "shapes", "mnist", "fashion_mnist", "mnist_t10k", "cifar10"} <= set(
        datasets.names()
    )
    assert all(splits == ("train", "test") for splits in datasets.BUILTIN_SPLITS.values())


def test_unknown_name_is_a_dataset_error_listing_the_names():
    with pytest.raises(datasets.UnknownDataset, match=r"unknown dataset 'mnits'.*'digits'"):
        datasets.load("mnits")


def test_unknown_split_lists_the_splits():
    with pytest.raises(datasets.UnknownSplit, match=r"no split 'val'.*\['train', 'test'\]"):
        datasets.load("digits", split="val")


def test_parse_reference_splits_name_and_split_and_defaults_to_test():
    assert datasets.parse_reference("digits:test") == ("digits", "test")
    assert datasets.parse_reference("shapes") == ("shapes", "test")
    with pytest.raises(datasets.UnknownDataset):
        datasets.parse_reference("nope:test")


def test_digits_are_8x8_uint8_one_channel_with_int64_labels():
    data = datasets.load("digits")
    assert data.images.shape[1:] == (1, 8, 8) and data.images.dtype == torch.uint8
    assert data.labels.dtype == torch.int64 and data.num_classes == 10
    assert data.class_names == [str(d) for d in range(10)]
    assert int(data.images.max()) == 255 and int(data.images.min()) == 0


def test_digits_split_is_stratified_disjoint_and_complete():
    train, test = datasets.load("digits", "train"), datasets.load("digits", "test")
    assert len(train) + len(test) == 1797
    assert len(test) == pytest.approx(0.2 * 1797, abs=10)
    assert not _keys(train) & _keys(test)
    fractions = train.labels.bincount() / (train.labels.bincount() + test.labels.bincount())
    assert torch.all((fractions - 0.8).abs() < 0.01)


def test_digits_split_is_deterministic():
    assert torch.equal(
        datasets.load("digits", "test").images, datasets.load("digits", "test").images
    )


def test_image_size_resizes_with_antialiased_bilinear_like_pil():
    data = datasets.load("digits", "test", image_size=16)
    assert data.images.shape[1:] == (1, 16, 16) and data.images.dtype == torch.uint8
    original = datasets.load("digits", "test", count=20).images
    small = datasets.load("digits", "test", image_size=3, count=20).images
    for image, resized in zip(original, small, strict=True):
        pil = Image.fromarray(image[0].numpy()).resize((3, 3), Image.Resampling.BILINEAR)
        assert (torch.tensor(np.asarray(pil)).int() - resized[0].int()).abs().max() <= 1


def test_shapes_are_labelled_rgb_images_drawn_at_the_requested_size():
    data = datasets.load("shapes", image_size=16, count=50)
    assert data.images.shape == (50, 3, 16, 16) and data.images.dtype == torch.uint8
    assert data.class_names == list(datasets.SHAPE_CLASSES)
    assert data.labels.bincount().tolist() == [10] * 5
    assert all(int(image.max()) > 0 for image in data.images)  # every image shows a shape


def test_shapes_are_reproducible_and_splits_differ():
    first, again = datasets.load("shapes", count=20), datasets.load("shapes", count=20)
    assert torch.equal(first.images, again.images) and torch.equal(first.labels, again.labels)
    assert not _keys(first) & _keys(datasets.load("shapes", "test", count=20))
    assert len(datasets.load("shapes", "test")) == datasets.SHAPES_DEFAULT_COUNT["test"]


def test_count_keeps_the_first_images_of_other_datasets():
    assert len(datasets.load("digits", count=5)) == 5


@needs_t10k
def test_mnist_test_split_reads_the_shared_t10k_files():
    data = datasets.load("mnist", "test", root=MNIST_T10K)
    assert data.images.shape == (10000, 1, 28, 28) and data.images.dtype == torch.uint8
    assert data.labels[:5].tolist() == [7, 2, 1, 0, 4]  # the well-known first t10k labels
    assert data.labels.bincount().tolist() == [
        980,
        1135,
        1032,
        1010,
        982,
        892,
        958,
        1028,
        974,
        1009,
    ]


@needs_t10k
def test_mnist_t10k_is_divided_into_disjoint_train_and_test():
    train = datasets.load("mnist_t10k", "train", root=MNIST_T10K)
    test = datasets.load("mnist_t10k", "test", root=MNIST_T10K)
    assert (len(train), len(test)) == (8000, 2000)
    assert train.name == "mnist_t10k" and train.num_classes == 10
    assert not _keys(train) & _keys(test)


def test_mnist_t10k_needs_a_root():
    with pytest.raises(datasets.DatasetError, match="needs root="):
        datasets.load("mnist_t10k")


@needs_t10k
def test_a_file_that_does_not_match_md5sums_is_refused(tmp_path):
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(Path(MNIST_T10K, name), tmp_path / name)
    sums = Path(MNIST_T10K, "MD5SUMS").read_text()
    (tmp_path / "MD5SUMS").write_text(sums.replace("9fb629c4", "00000000"))
    with pytest.raises(datasets.ChecksumMismatch, match="t10k-images-idx3-ubyte.gz has MD5"):
        datasets.load("mnist", "test", root=tmp_path)


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def test_fashion_mnist_reads_idx_files_in_torchvisions_layout(tmp_path):
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    _write_idx(raw / "train-images-idx3-ubyte.gz", np.full((3, 28, 28), 9))
    _write_idx(raw / "train-labels-idx1-ubyte.gz", np.array([0, 9, 3]))
    data = datasets.load("fashion_mnist", root=tmp_path, image_size=14)
    assert data.images.shape == (3, 1, 14, 14) and int(data.images[0, 0, 0, 0]) == 9
    assert data.labels.tolist() == [0, 9, 3] and data.class_names[9] == "Ankle boot"


def test_missing_mnist_files_say_where_to_put_them(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision", None)  # as if not installed
    monkeypatch.setitem(sys.modules, "torchvision.datasets", None)
    with pytest.raises(
        datasets.DatasetError, match=r"train-images-idx3-ubyte.*install torchvision"
    ):
        datasets.load("mnist", root=tmp_path)


def test_cifar10_reads_the_binary_release(tmp_path):
    binary = tmp_path / "cifar-10-batches-bin"
    binary.mkdir()
    records = np.zeros((2, 3073), dtype=np.uint8)
    records[:, 0] = [3, 8]
    records[1, 1 : 1 + 1024] = 200  # the red plane of the second image
    records.tofile(binary / "test_batch.bin")
    data = datasets.load("cifar10", "test", root=tmp_path)
    assert data.images.shape == (2, 3, 32, 32) and data.labels.tolist() == [3, 8]
    assert data.class_names[3] == "cat" and int(data.images[1, 0].min()) == 200
    assert int(data.images[1, 1].max()) == 0


def test_missing_cifar10_says_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision", None)
    monkeypatch.setitem(sys.modules, "torchvision.datasets", None)
    with pytest.raises(datasets.DatasetError, match="cifar-10-batches-bin"):
        datasets.load("cifar10", root=tmp_path)


@pytest.mark.parametrize("layout", [(4, 6, 5), (4, 6, 5, 3), (4, 3, 6, 5), (4, 6, 5, 1)], ids=str)
def test_load_npz_accepts_every_image_layout(tmp_path, layout):
    path = tmp_path / "upload.npz"
    np.savez(path, images=np.ones(layout, np.uint8), labels=np.array([0, 1, 1, 0]))
    data = datasets.load_npz(path)
    channels = 1 if len(layout) == 3 else min(layout[1], layout[3])
    assert data.images.shape == (4, channels, 6, 5) and data.labels.dtype == torch.int64
    assert data.num_classes == 2 and data.name == "upload"


def test_load_npz_takes_class_names_and_resizes(tmp_path):
    path = tmp_path / "pets.npz"
    names = np.array(["cat", "dog", "eel"])
    np.savez(path, images=np.ones((2, 8, 8), np.uint8), labels=np.array([0, 2]), class_names=names)
    data = datasets.load_npz(path, image_size=4)
    assert data.class_names == ["cat", "dog", "eel"] and data.num_classes == 3
    assert data.images.shape == (2, 1, 4, 4)


def test_load_npz_refuses_labels_outside_the_classes(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, images=np.ones((2, 4, 4), np.uint8), labels=np.array([0, 5]), class_names=["a"])
    with pytest.raises(datasets.DatasetError, match=r"labels must lie in \[0, 1\)"):
        datasets.load_npz(path)


def test_load_npz_refuses_float_images_and_pickled_arrays(tmp_path):
    floats = tmp_path / "floats.npz"
    np.savez(floats, images=np.ones((2, 4, 4)), labels=np.array([0, 1]))
    with pytest.raises(datasets.DatasetError, match="must be uint8"):
        datasets.load_npz(floats)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, images=np.array([object()]), labels=np.array([0]))
    with pytest.raises(datasets.DatasetError, match="without pickles"):
        datasets.load_npz(pickled)


def _png(colour: int | tuple[int, int, int], size: int = 6) -> bytes:
    mode = "L" if isinstance(colour, int) else "RGB"
    buffer = io.BytesIO()
    Image.new(mode, (size, size), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def test_imagefolder_zip_labels_by_sorted_folder_name(tmp_path):
    path = tmp_path / "upload.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("data/zebra/1.png", _png((255, 0, 0)))
        archive.writestr("data/ant/1.png", _png((0, 255, 0)))
        archive.writestr("data/ant/2.png", _png((0, 0, 255)))
        archive.writestr("data/readme.txt", "ignored")
    data = datasets.load_imagefolder_zip(path)
    assert data.class_names == ["ant", "zebra"] and data.labels.tolist() == [0, 0, 1]
    assert data.images.shape == (3, 3, 6, 6) and data.images[2, 0].min() == 255


def test_imagefolder_zip_of_grayscale_has_one_channel_and_resizes_mixed_sizes(tmp_path):
    path = tmp_path / "gray.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a/1.png", _png(10, size=6))
        archive.writestr("b/1.png", _png(20, size=9))
    with pytest.raises(datasets.DatasetError, match="pass image_size"):
        datasets.load_imagefolder_zip(path)
    data = datasets.load_imagefolder_zip(path, image_size=8)
    assert data.images.shape == (2, 1, 8, 8) and data.images.tolist()[1][0][0][0] == 20


def test_imagefolder_zip_without_class_folders_is_refused(tmp_path):
    path = tmp_path / "flat.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("1.png", _png(1))
    with pytest.raises(datasets.DatasetError, match="class_name/image.png"):
        datasets.load_imagefolder_zip(path)


def test_mnist_t10k_without_its_files_says_which_files_to_put_where(tmp_path):
    with pytest.raises(datasets.DatasetError, match=r"t10k-images-idx3-ubyte and t10k-labels"):
        datasets.load("mnist_t10k", root=tmp_path)
