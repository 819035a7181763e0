"""The ``npz`` format: one ``images.npz`` holding ``images`` uint8 (n, c, h, w),
``labels`` int64 (n,) and ``class_names``.

Each array is written as a .npy member whose header declares the final shape, then
filled shard by shard, so the archive is what ``np.load`` reads without ever being in
memory whole; the reader memory-maps it back the same way.
"""

from __future__ import annotations

import numpy as np
from numpy.lib import format as npy_format

from worker.formats.base import Batches, Source, Target, ZipWriter

LOCATION = "images.npz"


class Writer(ZipWriter):
    location = LOCATION
    content_type = None  # the store names it from the key

    def __init__(self, target: Target) -> None:
        super().__init__(target)
        self.images_member = self.zip.open("images.npy", "w", force_zip64=True)
        npy_format.write_array_header_2_0(
            self.images_member,
            {"descr": "|u1", "fortran_order": False, "shape": (target.count, *target.shape)},
        )
        self.labels_path = target.workdir / "labels.bin"
        self.labels_file = self.labels_path.open("wb")

    def add(self, images: np.ndarray, labels: np.ndarray, seeds: np.ndarray | None = None) -> None:
        images = np.ascontiguousarray(images, dtype=np.uint8)
        self.images_member.write(images.tobytes())
        self.labels_file.write(np.asarray(labels, dtype="<i8").tobytes())
        for i in range(images.shape[0]):
            index = self.count + i
            self.manifest.add(
                index, self.location, f"images[{index}]", int(labels[i]), images[i].tobytes()
            )
        self.count += images.shape[0]

    def _complete(self) -> None:
        self.images_member.close()
        self.labels_file.close()
        with self.zip.open("labels.npy", "w", force_zip64=True) as member:
            npy_format.write_array_header_2_0(
                member, {"descr": "<i8", "fortran_order": False, "shape": (self.count,)}
            )
            with self.labels_path.open("rb") as src:
                while chunk := src.read(1 << 20):
                    member.write(chunk)
        names = np.array(self.class_names)
        with self.zip.open("class_names.npy", "w") as member:
            npy_format.write_array(member, names)


def read(source: Source) -> tuple[Batches, int]:
    path = source.workdir / f"source-{LOCATION}"
    source.storage.get_file(f"{source.prefix}/{LOCATION}", path)
    data = np.load(path, mmap_mode="r")
    images, labels = data["images"][: source.count], data["labels"][: source.count]

    def batches() -> Batches:
        for start in range(0, len(labels), source.batch):
            yield (
                np.array(images[start : start + source.batch]),
                np.array(labels[start : start + source.batch], dtype=np.int64),
            )

    return batches(), len(labels)
