"""The ``imagefolder`` format: ``images.zip`` laid out ``class_name/000000.png``
(torchvision ImageFolder's layout); the file name is the image's generation index."""

from __future__ import annotations

import zipfile

import numpy as np

from worker.formats.base import Batches, Source, ZipWriter, in_batches
from worker.images import decode_png, png_bytes

LOCATION = "images.zip"


def folder_name(class_name: str) -> str:
    """The class's folder in the zip: the name with path-unsafe characters replaced."""
    cleaned = "".join(ch if ch.isalnum() or ch in "-_. " else "_" for ch in class_name)
    return cleaned.strip(". ") or "class"


class Writer(ZipWriter):
    location = LOCATION

    def add(self, images: np.ndarray, labels: np.ndarray, seeds: np.ndarray | None = None) -> None:
        for i in range(images.shape[0]):
            label = int(labels[i])
            member = f"{folder_name(self.class_names[label])}/{self.count:06d}.png"
            data = png_bytes(images[i])
            self.zip.writestr(member, data)
            self.manifest.add(self.count, self.location, member, label, data)
            self.count += 1


def read(source: Source) -> tuple[Batches, int]:
    path = source.workdir / f"source-{LOCATION}"
    source.storage.get_file(f"{source.prefix}/{LOCATION}", path)
    with zipfile.ZipFile(path) as archive:
        members = sorted(
            (n for n in archive.namelist() if n.endswith(".png")),
            key=lambda n: n.rsplit("/", 1)[-1],
        )[: source.count]
    index = {folder_name(c): i for i, c in enumerate(source.class_names)}

    def batches() -> Batches:
        with zipfile.ZipFile(path) as archive:
            for chunk in in_batches(members, source.batch):
                images = np.stack([decode_png(archive.read(m)) for m in chunk])
                labels = np.array([index[m.split("/")[0]] for m in chunk], dtype=np.int64)
                yield images, labels

    return batches(), len(members)
