"""Uploads as the validation job reads them: real archives, the hostile ones refused
before their content is expanded or decoded."""

from __future__ import annotations

import numpy as np
import pytest

from tests import archives
from worker.datasets.archive import (
    Archive,
    ArchiveTooLarge,
    FileTooLarge,
    Limits,
    TooManyFiles,
    UnsafePath,
    safe_name,
)
from worker.datasets.formats import (
    BadLayout,
    CorruptImages,
    Images,
    ImageTooLarge,
    NotAnImage,
    Options,
    read,
)

LIMITS = Limits(upload_bytes=10**8, expanded_bytes=4 * 2**20, files=100, file_bytes=2**20)


def options(**changes):
    base = {"limits": LIMITS, "max_pixels": 10_000, "max_side": 64, "skip_corrupt": False}
    return Options(**{**base, **changes})


def read_upload(tmp_path, fmt, data, **changes) -> Images:
    path = archives.write(tmp_path / "upload", data)
    return read(fmt, path, tmp_path, options(**changes), lambda done, total: None)


def pixels(images: Images) -> np.ndarray:
    raw = np.fromfile(images.path, dtype=np.uint8)
    return raw.reshape(images.count, *images.shape)


def test_imagefolder_zip_gives_sorted_classes_labels_and_one_gray_shape(tmp_path):
    images = read_upload(tmp_path, "zip", archives.zip_bytes(archives.imagefolder_files(5)))
    assert images.classes == ["circle", "square"]
    assert images.shape == (1, 8, 8)
    assert np.bincount(images.labels).tolist() == [5, 5]
    assert pixels(images)[images.labels == 1].min() > pixels(images)[images.labels == 0].max()


def test_one_enclosing_folder_is_stripped(tmp_path):
    files = archives.imagefolder_files(2, prefix="my-signs/")
    images = read_upload(tmp_path, "zip", archives.zip_bytes(files))
    assert images.classes == ["circle", "square"]


def test_gzipped_tar_reads_like_the_zip(tmp_path):
    files = archives.imagefolder_files(3)
    images = read_upload(tmp_path, "tar", archives.tar_bytes(files))
    assert images.count == 6 and images.classes == ["circle", "square"]


def test_junk_files_are_skipped_and_listed(tmp_path):
    files = {**archives.imagefolder_files(2), "circle/.DS_Store": b"x", "__MACOSX/a": b"y"}
    images = read_upload(tmp_path, "zip", archives.zip_bytes(files))
    assert images.count == 4
    assert sorted(images.ignored) == ["__MACOSX/a", "circle/.DS_Store"]


def test_mixed_sizes_become_the_median_shorter_side(tmp_path):
    files = {
        "circle/a.png": archives.png(10, (8, 8)),
        "circle/b.png": archives.png(20, (12, 10)),
        "square/c.png": archives.png(30, (16, 16), mode="RGB"),
    }
    images = read_upload(tmp_path, "zip", archives.zip_bytes(files))
    assert images.resized
    assert images.shape == (3, 10, 10)
    assert images.original_sizes == {"8x8": 1, "12x10": 1, "16x16": 1}


@pytest.mark.parametrize(
    "name",
    ["../../evil.png", "/etc/evil.png", "circle/../../evil.png", "C:/evil.png", "a\\..\\b.png"],
)
def test_unsafe_member_paths_are_refused(name):
    with pytest.raises(UnsafePath):
        safe_name(name)


def test_zip_slip_archive_is_refused_naming_the_member(tmp_path):
    with pytest.raises(UnsafePath, match=r"\.\./\.\./evil\.png.*zip-slip"):
        read_upload(tmp_path, "zip", archives.zip_slip())


def test_tar_symlink_is_refused(tmp_path):
    with pytest.raises(UnsafePath, match="link"):
        read_upload(tmp_path, "tar", archives.tar_with_symlink())


def test_zip_bomb_is_refused_from_its_directory_before_expanding(tmp_path):
    bomb = archives.zip_bomb(8 * 2**20)
    assert len(bomb) < 64 * 1024
    with pytest.raises(ArchiveTooLarge, match="zip bomb"):
        read_upload(tmp_path, "zip", bomb, limits=Limits(10**8, 4 * 2**20, 100, 16 * 2**20))


def test_member_over_the_file_limit_is_refused(tmp_path):
    with pytest.raises(FileTooLarge, match="circle/bomb.png"):
        read_upload(tmp_path, "zip", archives.zip_bomb(2 * 2**20))


def test_too_many_files_are_refused(tmp_path):
    limits = Limits(10**8, 10**8, 3, 2**20)
    with pytest.raises(TooManyFiles):
        read_upload(
            tmp_path, "zip", archives.zip_bytes(archives.imagefolder_files(2)), limits=limits
        )


def test_non_image_file_is_refused(tmp_path):
    files = {**archives.imagefolder_files(2), "circle/notes.txt": b"hello"}
    with pytest.raises(NotAnImage, match="circle/notes.txt"):
        read_upload(tmp_path, "zip", archives.zip_bytes(files))


def test_image_outside_a_class_folder_is_refused(tmp_path):
    files = {**archives.imagefolder_files(2), "loose.png": archives.png(3)}
    with pytest.raises(BadLayout, match="loose.png"):
        read_upload(tmp_path, "zip", archives.zip_bytes(files))


def test_truncated_png_refuses_the_dataset_and_names_the_file(tmp_path):
    with pytest.raises(CorruptImages, match=r"circle/001\.png.*skip_corrupt"):
        read_upload(tmp_path, "zip", archives.truncated_png_zip())


def test_truncated_png_is_left_out_and_listed_with_skip_corrupt(tmp_path):
    images = read_upload(tmp_path, "zip", archives.truncated_png_zip(), skip_corrupt=True)
    assert images.count == 5
    assert [c["file"] for c in images.corrupt] == ["circle/001.png"]


def test_30000_squared_png_header_is_refused_before_decoding(tmp_path):
    with pytest.raises(ImageTooLarge, match="square/huge.png"):
        read_upload(tmp_path, "zip", archives.huge_header_zip())


def test_image_over_the_configured_pixel_limit_is_refused_with_its_size(tmp_path):
    data = archives.huge_header_zip(200, 100)
    with pytest.raises(ImageTooLarge, match=r"200x100 = 20000 pixels, over the limit of 10000"):
        read_upload(tmp_path, "zip", data)


def test_npz_with_classes_reads_as_arrays(tmp_path):
    images = read_upload(tmp_path, "npz", archives.npz_bytes(4))
    assert images.classes == ["circle", "square"]
    assert images.shape == (1, 8, 8) and images.count == 8


def test_npz_holding_pickles_is_refused(tmp_path):
    data = archives.npz_bytes(2, extra=np.array([{"a": 1}], dtype=object))
    with pytest.raises(BadLayout, match="pickle"):
        read_upload(tmp_path, "npz", data)


def test_cifar_batches_in_a_tar_with_their_meta(tmp_path):
    files = {
        "cifar-10-batches-bin/data_batch_1.bin": archives.cifar_batch([0, 1, 1]),
        "cifar-10-batches-bin/batches.meta.txt": b"plane\ncar\n",
        "cifar-10-batches-bin/readme.html": b"<html>",
    }
    images = read_upload(tmp_path, "cifar", archives.tar_bytes(files))
    assert images.classes == ["plane", "car"]
    assert images.labels.tolist() == [0, 1, 1] and images.shape == (3, 32, 32)
    assert images.ignored == ["cifar-10-batches-bin/readme.html"]


def test_cifar_file_of_partial_records_is_refused(tmp_path):
    with pytest.raises(BadLayout, match="CIFAR-10 records"):
        read_upload(tmp_path, "cifar", archives.cifar_batch([0, 1])[:-5])


def test_extract_writes_inside_the_folder_only(tmp_path):
    path = archives.write(tmp_path / "model.tar", archives.tar_bytes({"m/a/b.json": b"{}"}, "w"))
    archive = Archive(path, LIMITS)
    written = archive.extract(tmp_path / "out", strip="m")
    assert written == [(tmp_path / "out" / "a" / "b.json").resolve()]
