"""MNIST-family idx files (LeCun's format): finding them, checking them against an
``MD5SUMS`` file, parsing them. Split from models/datasets.py, which builds datasets on it."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from models.image_data import ChecksumMismatch, DatasetError

if TYPE_CHECKING:
    import numpy as np


def find(stem: str, *directories: Path) -> Path | None:
    """The file for ``stem`` (plain or .gz) in the first of ``directories`` that has it,
    checked against an ``MD5SUMS`` beside it."""
    for directory in directories:
        for candidate in (directory / stem, directory / f"{stem}.gz"):
            if candidate.is_file():
                verify_md5(candidate)
                return candidate
    return None


def verify_md5(path: Path) -> None:
    """Check ``path`` against an ``MD5SUMS`` file beside it, when there is one."""
    sums = path.parent / "MD5SUMS"
    if not sums.is_file():
        return
    expected = {}
    for line in sums.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2:
            expected[parts[1].lstrip("*")] = parts[0].lower()
    if path.name not in expected:
        return
    digest = hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()
    if digest != expected[path.name]:
        raise ChecksumMismatch(
            f"{path} has MD5 {digest} but {sums} lists {expected[path.name]}; "
            "the file is corrupt or incomplete: download it again"
        )


def read(path: Path) -> np.ndarray:
    """Parse an idx file (LeCun's format: magic, big-endian dims, uint8 data)."""
    import numpy as np

    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] != 0x08:
        raise DatasetError(f"{path} is not an idx file of unsigned bytes")
    ndim = raw[3]
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    offset = 4 + 4 * ndim
    if len(raw) - offset != int(np.prod(dims)):
        raise DatasetError(f"{path} is truncated: header says {dims}")
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(dims).copy()
