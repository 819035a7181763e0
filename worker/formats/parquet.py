"""The ``parquet`` format: Hugging Face ``datasets``' Parquet layout, in shards
``data/train-00000.parquet``, ``data/train-00001.parquet``, ...

Columns: ``image`` (the ``Image`` feature: a struct of the PNG's ``bytes`` and a ``path``,
``{index:06d}.png``), ``label`` (a ``ClassLabel`` carrying the class names), and what
traces an image to how it was made: ``index`` (its place in the job's output), ``seed``
(the seed it was sampled with; see OutputWriter) and ``model_version`` (the id of the
version that made it). The features are in the schema's metadata under ``huggingface``,
as ``datasets`` writes them, so ``load_dataset("parquet", data_files=...)`` gives the
``Image`` and ``ClassLabel`` features back without being told.

Written with pyarrow directly (``datasets`` would bring pandas and more into the worker
for one metadata key). A shard is a few row groups of at most one generate shard each.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from worker.formats.base import Batches, ShardedWriter, Source, downloaded_shards, rebatched
from worker.images import decode_png, png_bytes

FOLDER = "data"
SUFFIX = ".parquet"
LOCATION = f"{FOLDER}/train-*{SUFFIX}"
CONTENT_TYPE = "application/vnd.apache.parquet"
ROW_LISTS = ("bytes", "label", "index", "seed")  # the open row group, column by column


def features(class_names: list[str]) -> dict[str, Any]:
    """The ``datasets`` Features of the columns, as ``Features.to_dict()`` writes them."""
    return {
        "image": {"_type": "Image"},
        "label": {"names": list(class_names), "_type": "ClassLabel"},
        "index": {"dtype": "int64", "_type": "Value"},
        "seed": {"dtype": "int64", "_type": "Value"},
        "model_version": {"dtype": "string", "_type": "Value"},
    }


def schema(class_names: list[str]) -> pa.Schema:
    metadata = {"huggingface": json.dumps({"info": {"features": features(class_names)}})}
    return pa.schema(
        [
            pa.field("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
            pa.field("label", pa.int64()),
            pa.field("index", pa.int64()),
            pa.field("seed", pa.int64()),
            pa.field("model_version", pa.string()),
        ],
        metadata=metadata,
    )


class Writer(ShardedWriter):
    folder = FOLDER
    suffix = SUFFIX
    digits = 5
    content_type = CONTENT_TYPE
    default_location = LOCATION

    def __init__(self, target: Any) -> None:
        super().__init__(target)
        self.schema = schema(self.class_names)
        self.file: pq.ParquetWriter | None = None
        self.rows: dict[str, list[Any]] = {name: [] for name in ROW_LISTS}

    def _open_shard(self, path: Path) -> None:
        # PNG bytes do not compress; the small columns do, and snappy is what datasets
        # writes. Statistics of the image bytes would only bloat the footer.
        self.file = pq.ParquetWriter(
            path, self.schema, compression="snappy", write_statistics=["label", "index", "seed"]
        )

    def add(self, images: np.ndarray, labels: np.ndarray, seeds: np.ndarray | None = None) -> None:
        for i in range(images.shape[0]):
            self._before_sample()
            label, data = int(labels[i]), png_bytes(images[i])
            self.manifest.add(self.count, self.current, str(self.in_shard), label, data)
            self.rows["bytes"].append(data)
            self.rows["label"].append(label)
            self.rows["index"].append(self.count)
            self.rows["seed"].append(None if seeds is None else int(seeds[i]))
            self.count += 1
            self._after_sample(len(data))
        self._flush()

    def _flush(self) -> None:
        """The rows so far as a row group of the open shard (columns built whole: a dict
        per row would cost as much as encoding the PNGs)."""
        rows = self.rows
        if self.file is None or not rows["index"]:
            return
        paths = pa.array([f"{i:06d}.png" for i in rows["index"]], pa.string())
        image = pa.StructArray.from_arrays(
            [pa.array(rows["bytes"], pa.binary()), paths],
            fields=list(self.schema.field("image").type),
        )
        n = len(rows["index"])
        columns = [
            image,
            pa.array(rows["label"], pa.int64()),
            pa.array(rows["index"], pa.int64()),
            pa.array(rows["seed"], pa.int64()),
            pa.array([self.target.model_version] * n, pa.string()),
        ]
        self.file.write_table(pa.Table.from_arrays(columns, schema=self.schema))
        self.rows = {name: [] for name in ROW_LISTS}

    def _close_shard(self) -> None:
        self._flush()
        assert self.file is not None  # noqa: S101 - a shard is open while it has rows
        self.file.close()
        self.file = None


def read(source: Source) -> tuple[Batches, int]:
    paths = downloaded_shards(source, FOLDER, SUFFIX)
    stored = sum(pq.ParquetFile(path).metadata.num_rows for path in paths)
    total = stored if source.count is None else min(source.count, stored)

    def parts() -> Batches:
        left = total
        for path in paths:
            for batch in pq.ParquetFile(path).iter_batches(
                batch_size=source.batch, columns=["image", "label"]
            ):
                if left <= 0:
                    return
                rows = batch.slice(0, left).to_pydict()
                images = np.stack([decode_png(cell["bytes"]) for cell in rows["image"]])
                yield images, np.asarray(rows["label"], dtype=np.int64)
                left -= len(rows["label"])

    return rebatched(parts(), source.batch), total
