"""The ``png`` format: ``images/000000.png`` per image plus ``labels.csv`` (file, label,
class_name). Uploads run in a thread pool and overlap with sampling."""

from __future__ import annotations

import csv
import io
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from core.storage import StoredObject
from worker.formats.base import Batches, OutputWriter, Source, Target, in_batches
from worker.images import decode_png, png_bytes

LOCATION = "images/*.png"
LABELS = "labels.csv"


class Writer(OutputWriter):
    location = LOCATION

    def __init__(self, target: Target) -> None:
        super().__init__(target)
        self.pool = ThreadPoolExecutor(max_workers=16)
        self.pending: list[tuple[str, Future[StoredObject]]] = []
        self.done: list[tuple[str, StoredObject]] = []
        self.csv_path = target.workdir / LABELS
        self.csv_file = self.csv_path.open("w", newline="")
        self.csv = csv.writer(self.csv_file)
        self.csv.writerow(["file", "label", "class_name"])

    def add(self, images: np.ndarray, labels: np.ndarray, seeds: np.ndarray | None = None) -> None:
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
        obj = self.storage.put_file(f"{self.prefix}/{LABELS}", self.csv_path, "text/csv")
        return [*self.done, (LABELS, obj)]


def read(source: Source) -> tuple[Batches, int]:
    text = source.storage.get_bytes(f"{source.prefix}/{LABELS}").decode()
    rows = list(csv.DictReader(io.StringIO(text)))[: source.count]
    labels = {row["file"]: int(row["label"]) for row in rows}
    files = [row["file"] for row in rows]

    def batches() -> Batches:
        for chunk in in_batches(files, source.batch):
            images = [decode_png(source.storage.get_bytes(f"{source.prefix}/{f}")) for f in chunk]
            yield np.stack(images), np.array([labels[f] for f in chunk], dtype=np.int64)

    return batches(), len(files)
