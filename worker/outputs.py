"""Writers for generated images: png files, one npz, or an ImageFolder zip, each with a
manifest.csv listing every image with its label and checksum; plus the grid.

Every writer takes shards as they come and keeps none of them: generating 60,000 images
holds one shard in memory, and the npz/zip is streamed to a temporary file on disk.
"""

from __future__ import annotations

import csv
import hashlib
import io
import zipfile
from abc import ABC, abstractmethod
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format
from PIL import Image

from core.storage import Storage, StoredObject


def to_pil(image: np.ndarray) -> Image.Image:
    """image: uint8 (c, h, w) with c in {1, 3}."""
    if image.shape[0] == 1:
        return Image.fromarray(image[0], mode="L")
    return Image.fromarray(np.ascontiguousarray(image.transpose(1, 2, 0)), mode="RGB")


def png_bytes(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    to_pil(image).save(buf, format="PNG")
    return buf.getvalue()


def grid_png(images: np.ndarray, nrow: int, scale: int = 1) -> bytes:
    """images: uint8 (n, c, h, w) → one PNG with ``nrow`` images per row and 2px gutters."""
    n, c, h, w = images.shape
    rows = (n + nrow - 1) // nrow
    pad = 2
    canvas = np.zeros((c, rows * (h + pad) + pad, nrow * (w + pad) + pad), dtype=np.uint8)
    for i in range(n):
        r, col = divmod(i, nrow)
        y, x = pad + r * (h + pad), pad + col * (w + pad)
        canvas[:, y : y + h, x : x + w] = images[i]
    img = to_pil(canvas)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


class GridCollector:
    """Keeps up to ``per_class`` images of each class (the first seen) for the preview grid."""

    def __init__(self, num_classes: int, per_class: int = 10) -> None:
        self.per_class = per_class
        self.slots: dict[int, list[np.ndarray]] = {c: [] for c in range(max(num_classes, 1))}

    def add(self, images: np.ndarray, labels: np.ndarray | None) -> None:
        for i in range(images.shape[0]):
            label = int(labels[i]) if labels is not None else 0
            slot = self.slots.setdefault(label, [])
            if len(slot) < self.per_class:
                slot.append(images[i].copy())

    def png(self) -> bytes:
        rows = [s for s in self.slots.values() if s]
        ordered = [img for row in rows for img in row]
        stacked = np.stack(ordered)
        scale = max(1, 64 // stacked.shape[-1])
        return grid_png(stacked, nrow=self.per_class, scale=scale)


MANIFEST = "manifest.csv"
MANIFEST_COLUMNS = ["index", "file", "member", "label", "class_name", "sha256", "size"]


class Manifest:
    """``manifest.csv``: one row per image, in generation order, written as images come.

    file is the artifact holding the image; member is where inside it (the zip member of
    an imagefolder, ``images[i]`` of an npz, empty for a png); sha256 and size are those
    of the image's own bytes: the PNG (png, imagefolder) or the raw uint8 (c, h, w) row
    of the npz's images array.
    """

    def __init__(self, path: Path, class_names: list[str]) -> None:
        self.path = path
        self.class_names = class_names
        self.file = path.open("w", newline="")
        self.csv = csv.writer(self.file)
        self.csv.writerow(MANIFEST_COLUMNS)

    def add(self, index: int, file: str, member: str, label: int, data: bytes) -> None:
        digest = hashlib.sha256(data).hexdigest()
        self.csv.writerow([index, file, member, label, self.class_names[label], digest, len(data)])

    def upload(self, storage: Storage, key: str) -> StoredObject:
        self.file.close()
        return storage.put_file(key, self.path, "text/csv")


class OutputWriter(ABC):
    """Base: ``add(images, labels)`` per shard, then ``finish() -> [(name, object)]``: the
    format's own files, then the manifest that lists every image."""

    location: str
    """Where the images are, for the job's result: "images/*.png", "images.npz", ..."""

    def __init__(
        self, storage: Storage, prefix: str, workdir: Path, class_names: list[str]
    ) -> None:
        self.storage = storage
        self.prefix = prefix
        self.workdir = workdir
        self.class_names = class_names
        self.count = 0
        self.manifest = Manifest(workdir / MANIFEST, class_names)

    @abstractmethod
    def add(self, images: np.ndarray, labels: np.ndarray) -> None: ...

    @abstractmethod
    def _close(self) -> list[tuple[str, StoredObject]]:
        """Upload what is still local; returns the format's artifacts."""

    def finish(self) -> list[tuple[str, StoredObject]]:
        objects = self._close()
        manifest = self.manifest.upload(self.storage, f"{self.prefix}/{MANIFEST}")
        return [*objects, (MANIFEST, manifest)]


class PngWriter(OutputWriter):
    """``images/00000.png`` per image + ``labels.csv``; uploads overlap with sampling."""

    location = "images/*.png"

    def __init__(
        self, storage: Storage, prefix: str, workdir: Path, class_names: list[str]
    ) -> None:
        super().__init__(storage, prefix, workdir, class_names)
        self.pool = ThreadPoolExecutor(max_workers=16)
        self.pending: list[tuple[str, Future[StoredObject]]] = []
        self.done: list[tuple[str, StoredObject]] = []
        self.csv_path = workdir / "labels.csv"
        self.csv_file = self.csv_path.open("w", newline="")
        self.csv = csv.writer(self.csv_file)
        self.csv.writerow(["file", "label", "class_name"])

    def add(self, images: np.ndarray, labels: np.ndarray) -> None:
        for i in range(images.shape[0]):
            name = f"images/{self.count:06d}.png"
            label = int(labels[i])
            self.csv.writerow([name, label, self.class_names[label]])
            data = png_bytes(images[i])
            self.manifest.add(self.count, name, "", label, data)
            fut = self.pool.submit(
                self.storage.put_bytes, f"{self.prefix}/{name}", data, "image/png"
            )
            self.pending.append((name, fut))
            self.count += 1
        self._collect(block=False)

    def _collect(self, *, block: bool) -> None:
        still = []
        for name, fut in self.pending:
            if block or fut.done():
                self.done.append((name, fut.result()))
            else:
                still.append((name, fut))
        self.pending = still

    def _close(self) -> list[tuple[str, StoredObject]]:
        self._collect(block=True)
        self.pool.shutdown()
        self.csv_file.close()
        obj = self.storage.put_file(f"{self.prefix}/labels.csv", self.csv_path, "text/csv")
        return [*self.done, ("labels.csv", obj)]


class NpzWriter(OutputWriter):
    """One ``images.npz`` holding ``images`` uint8 (n, c, h, w) and ``labels`` int64 (n,).

    Each array is written as a .npy member whose header declares the final shape, then
    filled shard by shard, so the archive is what ``np.load`` reads without ever being
    in memory whole.
    """

    location = "images.npz"

    def __init__(
        self,
        storage: Storage,
        prefix: str,
        workdir: Path,
        total: int,
        shape: tuple[int, ...],
        class_names: list[str],
    ) -> None:
        super().__init__(storage, prefix, workdir, class_names)
        self.path = workdir / "images.npz"
        self.total = total
        self.zip = zipfile.ZipFile(self.path, "w", compression=zipfile.ZIP_STORED, allowZip64=True)
        self.images_member = self.zip.open("images.npy", "w", force_zip64=True)
        npy_format.write_array_header_2_0(
            self.images_member,
            {"descr": "|u1", "fortran_order": False, "shape": (total, *shape)},
        )
        self.labels_path = workdir / "labels.bin"
        self.labels_file = self.labels_path.open("wb")

    def add(self, images: np.ndarray, labels: np.ndarray) -> None:
        images = np.ascontiguousarray(images, dtype=np.uint8)
        self.images_member.write(images.tobytes())
        self.labels_file.write(np.asarray(labels, dtype="<i8").tobytes())
        for i in range(images.shape[0]):
            index = self.count + i
            self.manifest.add(
                index, self.location, f"images[{index}]", int(labels[i]), images[i].tobytes()
            )
        self.count += images.shape[0]

    def _close(self) -> list[tuple[str, StoredObject]]:
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
        self.zip.close()
        obj = self.storage.put_file(f"{self.prefix}/images.npz", self.path)
        return [("images.npz", obj)]


class ImageFolderWriter(OutputWriter):
    """``images.zip`` laid out ``class_name/000000.png`` (torchvision ImageFolder's layout)."""

    location = "images.zip"

    def __init__(
        self, storage: Storage, prefix: str, workdir: Path, class_names: list[str]
    ) -> None:
        super().__init__(storage, prefix, workdir, class_names)
        self.path = workdir / "images.zip"
        # PNG is already compressed: storing avoids spending CPU for nothing.
        self.zip = zipfile.ZipFile(self.path, "w", compression=zipfile.ZIP_STORED, allowZip64=True)

    def add(self, images: np.ndarray, labels: np.ndarray) -> None:
        for i in range(images.shape[0]):
            label = int(labels[i])
            member = f"{_safe_dirname(self.class_names[label])}/{self.count:06d}.png"
            data = png_bytes(images[i])
            self.zip.writestr(member, data)
            self.manifest.add(self.count, self.location, member, label, data)
            self.count += 1

    def _close(self) -> list[tuple[str, StoredObject]]:
        self.zip.close()
        obj = self.storage.put_file(f"{self.prefix}/images.zip", self.path, "application/zip")
        return [("images.zip", obj)]


def _safe_dirname(name: str) -> str:
    cleaned = "".join(ch if ch.isalnum() or ch in "-_. " else "_" for ch in name).strip(". ")
    return cleaned or "class"
