"""Parquet and WebDataset uploads: datasets made elsewhere (a Hugging Face ``datasets``
export, WebDataset shards), taken back like an ImageFolder archive, under the same limits.

An upload is one file: a Parquet file or one tar shard, or a zip/tar holding several
(``data/*.parquet``, ``shards/*.tar``). The outer archive gets every check of
worker/datasets/archive.py before a byte is extracted; each image inside then counts as
one file against ``files``, ``file_bytes`` and ``expanded_bytes``, as the members of an
ImageFolder would, and is decoded by worker/datasets/decode.py (headers first).

Parquet: the image column is the one the ``huggingface`` schema metadata declares an
``Image`` (else a column named image or img), bytes in a ``{bytes, path}`` struct or a
binary column; the label column is the ``ClassLabel`` (its names are the classes) or a
column named label or labels, integers or class names. WebDataset: a sample's members
share a key (``000042.png``, ``000042.cls``, ``000042.json``); the label is the .cls
integer (or the .json's ``label``), named by the .json's ``class_name`` when it has one.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from worker.datasets.archive import (
    Archive,
    ArchiveTooLarge,
    BadArchive,
    FileTooLarge,
    Limits,
    TooManyFiles,
    is_archive,
)
from worker.datasets.decode import IMAGE_SUFFIXES, BadLayout, Images, Options, Progress, decode

PARQUET_MAGIC = b"PAR1"
IMAGE_COLUMNS = ("image", "img")
LABEL_COLUMNS = ("label", "labels")
LABEL_EXTENSIONS = ("cls", "json")


class Budget:
    """The archive limits, counted over the images inside the upload's files."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.files = 0
        self.bytes = 0

    def take(self, name: str, size: int) -> None:
        self.files += 1
        self.bytes += size
        if self.files > self.limits.files:
            raise TooManyFiles(f"the upload holds more than {self.limits.files} images, the limit")
        if size > self.limits.file_bytes:
            raise FileTooLarge(
                f"{name} is {size} bytes, over the limit of {self.limits.file_bytes} bytes "
                "per image"
            )
        if self.bytes > self.limits.expanded_bytes:
            raise ArchiveTooLarge(
                f"the images add up to more than {self.limits.expanded_bytes} bytes, the limit"
            )


def _unpacked(path: Path, workdir: Path, options: Options, suffixes: tuple[str, ...]) -> list[Path]:
    """The upload itself, or the files of the archive holding them (checked, extracted)."""
    if not is_archive(path) or not _holds(path, options, suffixes):
        return [path]
    archive = Archive(path, options.limits)
    wanted = [m.name for m in archive.members if m.name.lower().endswith(suffixes)]
    if not wanted:
        raise BadLayout(f"the archive holds no {' or '.join(suffixes)} file")
    folder = workdir / "unpacked"
    archive.extract(folder)
    return [folder / name for name in sorted(wanted)]


def _holds(path: Path, options: Options, suffixes: tuple[str, ...]) -> bool:
    """Whether an archive upload is a container of shards (not itself a shard)."""
    archive = Archive(path, options.limits)
    names = [m.name.lower() for m in archive.members]
    return bool(names) and all(n.endswith(suffixes) for n in names)


# Parquet ------------------------------------------------------------------------------


def _features(schema: pa.Schema) -> dict[str, Any]:
    raw = (schema.metadata or {}).get(b"huggingface")
    if not raw:
        return {}
    try:
        features = json.loads(raw).get("info", {}).get("features", {})
    except (ValueError, AttributeError):
        return {}
    return features if isinstance(features, dict) else {}


def _columns(schema: pa.Schema, name: str) -> tuple[str, str, list[str] | None]:
    """(image column, label column, class names from a ClassLabel or None)."""
    features = _features(schema)
    typed = {col: (f or {}).get("_type") for col, f in features.items() if isinstance(f, dict)}
    image = next((c for c, t in typed.items() if t == "Image" and c in schema.names), None)
    image = image or next((c for c in IMAGE_COLUMNS if c in schema.names), None)
    label = next((c for c, t in typed.items() if t == "ClassLabel" and c in schema.names), None)
    label = label or next((c for c in LABEL_COLUMNS if c in schema.names), None)
    if image is None or label is None:
        raise BadLayout(
            f"{name} has no {'image' if image is None else 'label'} column: a Parquet dataset "
            "needs an Image column (the datasets features, or a column named image) and a "
            f"ClassLabel or a column named label; it has {', '.join(schema.names)}"
        )
    names = features.get(label, {}).get("names") if typed.get(label) == "ClassLabel" else None
    return image, label, [str(n) for n in names] if names else None


def _image_bytes(cell: Any, name: str) -> bytes:
    data = cell.get("bytes") if isinstance(cell, dict) else cell
    if not isinstance(data, bytes):
        raise BadLayout(
            f"{name} holds no image bytes (an image given only by path is not part of the upload)"
        )
    return data


def parquet(path: Path, workdir: Path, options: Options, progress: Progress) -> Images:
    files = _unpacked(path, workdir, options, (".parquet",))
    opened = []
    for file in files:
        with file.open("rb") as handle:
            if handle.read(4) != PARQUET_MAGIC:
                raise BadArchive(f"{file.name} is not a Parquet file")
        try:
            opened.append((file, pq.ParquetFile(file)))
        except (pa.ArrowException, OSError) as exc:
            raise BadArchive(f"{file.name} is not a readable Parquet file: {exc}") from None
    columns = {file.name: _columns(pf.schema_arrow, file.name) for file, pf in opened}
    class_lists = {tuple(names) for _, _, names in columns.values() if names is not None}
    if len(class_lists) > 1:
        raise BadLayout("the Parquet files name different classes in their ClassLabel")
    ordered = list(class_lists.pop()) if class_lists else None
    budget = Budget(options.limits)
    label_of: dict[str, str] = {}

    def rows() -> Iterator[tuple[str, Any, Any]]:
        for file, pf in opened:
            image, label, _ = columns[file.name]
            index = 0
            for batch in pf.iter_batches(batch_size=64, columns=[image, label]):
                table = batch.to_pydict()
                for cell, value in zip(table[image], table[label], strict=True):
                    yield f"{file.name}#{index}", cell, value
                    index += 1

    for name, cell, value in rows():
        budget.take(name, len(_image_bytes(cell, name)))
        if value is None:
            raise BadLayout(f"{name} has no label")
        if ordered is not None and isinstance(value, int):
            if not 0 <= value < len(ordered):
                raise BadLayout(f"{name}: label {value} is not one of the ClassLabel's")
            label_of[name] = ordered[value]
        else:
            label_of[name] = str(value)
    if not label_of:
        raise BadLayout("the Parquet files hold no rows")
    if ordered is None and all(v.lstrip("-").isdigit() for v in label_of.values()):
        ordered = [str(v) for v in sorted({int(v) for v in label_of.values()})]

    def read(names: Iterable[str]) -> Iterator[tuple[str, bytes]]:
        wanted = set(names)
        for name, cell, _ in rows():
            if name in wanted:
                yield name, _image_bytes(cell, name)

    return decode(read, label_of, workdir, options, progress, classes=ordered)


# WebDataset ---------------------------------------------------------------------------


def _key(name: str) -> tuple[str, str]:
    """(sample key, extension): the name up to the first dot of its last part."""
    folder, _, base = name.rpartition("/")
    stem, _, ext = base.partition(".")
    return (f"{folder}/{stem}" if folder else stem), ext.lower()


def webdataset(path: Path, workdir: Path, options: Options, progress: Progress) -> Images:
    if zipfile.is_zipfile(path) and not _holds(path, options, (".tar",)):
        raise BadLayout("a WebDataset upload is a tar shard, or a zip or tar of .tar shards")
    shards = [
        Archive(file, options.limits, kind="tar")
        for file in _unpacked(path, workdir, options, (".tar",))
    ]
    budget = Budget(options.limits)
    images: dict[str, str] = {}  # image member → "shard|member"
    labels: dict[str, tuple[int, str | None]] = {}
    ignored: list[str] = []
    for number, shard in enumerate(shards):
        samples: dict[str, dict[str, str]] = {}
        for member in shard.members:
            key, ext = _key(member.name)
            samples.setdefault(key, {})[ext] = member.name
            if f".{ext}" in IMAGE_SUFFIXES:
                budget.take(member.name, member.size)
        small = [m for s in samples.values() for e, m in s.items() if e in LABEL_EXTENSIONS]
        found = dict(shard.read(small))
        for key, sample in samples.items():
            image = next((m for e, m in sample.items() if f".{e}" in IMAGE_SUFFIXES), None)
            if image is None:
                ignored += sorted(sample.values())
                continue
            where = f"{number}|{image}"
            images[where] = key
            labels[where] = _label(key, sample, found)
        ignored += shard.ignored
    if not images:
        raise BadLayout("no sample in the shards has an image (key.png, key.jpg, ...)")
    names = {label: name for label, name in labels.values() if name is not None}
    ordered = [names.get(i, str(i)) for i in sorted({label for label, _ in labels.values()})]
    by_label = dict(zip(sorted({label for label, _ in labels.values()}), ordered, strict=True))
    folder_of = {where: by_label[labels[where][0]] for where in images}

    def read(wanted: Iterable[str]) -> Iterator[tuple[str, bytes]]:
        chosen = set(wanted)
        for number, shard in enumerate(shards):
            members = [w.split("|", 1)[1] for w in chosen if w.startswith(f"{number}|")]
            for member, data in shard.read(members):
                yield f"{number}|{member}", data

    made = decode(read, folder_of, workdir, options, progress, classes=ordered, ignored=ignored)
    made.corrupt = [{**c, "file": c["file"].split("|", 1)[1]} for c in made.corrupt]
    return made


def _label(key: str, sample: dict[str, str], found: dict[str, bytes]) -> tuple[int, str | None]:
    meta: dict[str, Any] = {}
    if "json" in sample:
        try:
            loaded = json.loads(found[sample["json"]])
            meta = loaded if isinstance(loaded, dict) else {}
        except ValueError:
            raise BadLayout(f"{sample['json']} is not JSON") from None
    text = found[sample["cls"]].decode("utf-8", "replace").strip() if "cls" in sample else None
    value = text if text is not None else meta.get("label")
    try:
        label = int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise BadLayout(
            f"sample {key} has no integer label: give it a {key}.cls holding the class number "
            f"(or a {key}.json with a label)"
        ) from None
    if label < 0:
        raise BadLayout(f"sample {key} has a negative label ({label})")
    name = meta.get("class_name")
    return label, str(name) if isinstance(name, str) and name else None
