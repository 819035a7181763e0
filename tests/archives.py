"""Real upload files for the dataset tests, made on the spot: ImageFolder zips and tars,
npz files, CIFAR batches, and the hostile ones (zip-slip, zip bomb, a truncated PNG, a
PNG whose header claims 30000x30000 pixels)."""

from __future__ import annotations

import io
import struct
import tarfile
import zipfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ("circle", "square")


def png(value: int, size: tuple[int, int] = (8, 8), mode: str = "L") -> bytes:
    """A PNG of one flat ``value`` (0..255)."""
    buf = io.BytesIO()
    colour = value if mode == "L" else (value, 255 - value, value // 2)
    Image.new(mode, size, colour).save(buf, format="PNG")
    return buf.getvalue()


def noise_png(side: int, seed: int = 0) -> bytes:
    """An RGB PNG of random pixels: incompressible, about 3·side² bytes."""
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def png_header(width: int, height: int) -> bytes:
    """A valid PNG signature and IHDR claiming ``width`` x ``height`` 8-bit gray pixels,
    an empty IDAT and IEND: a few dozen bytes that would decode to width*height bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )


def imagefolder_files(per_class: int = 5, prefix: str = "", mode: str = "L") -> dict[str, bytes]:
    """class/NNN.png for each of CLASSES, images of class c darker than class c+1."""
    return {
        f"{prefix}{name}/{i:03d}.png": png(40 + 120 * c + i, mode=mode)
        for c, name in enumerate(CLASSES)
        for i in range(per_class)
    }


def zip_bytes(files: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buf.getvalue()


def tar_bytes(files: dict[str, bytes], mode: str = "w:gz") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def tar_with_symlink() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as archive:
        info = tarfile.TarInfo("circle/link.png")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        archive.addfile(info)
    return buf.getvalue()


def zip_slip() -> bytes:
    return zip_bytes({**imagefolder_files(2), "../../evil.png": png(1)})


def zip_bomb(expanded: int) -> bytes:
    """One member of ``expanded`` zero bytes: deflate shrinks it about a thousandfold."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open("circle/bomb.png", "w", force_zip64=True) as member:
            block = bytes(1 << 20)
            for _ in range(expanded // len(block)):
                member.write(block)
    return buf.getvalue()


def truncated_png_zip() -> bytes:
    files = imagefolder_files(3)
    whole = files["circle/001.png"]
    files["circle/001.png"] = whole[: len(whole) // 2]
    return zip_bytes(files)


def huge_header_zip(width: int = 30000, height: int = 30000) -> bytes:
    return zip_bytes({**imagefolder_files(2), "square/huge.png": png_header(width, height)})


def npz_bytes(n_per_class: int = 5, **extra: np.ndarray) -> bytes:
    labels = np.repeat(np.arange(len(CLASSES)), n_per_class)
    images = (labels[:, None, None] * 100 + 20).astype(np.uint8).repeat(64, 1).reshape(-1, 8, 8)
    buf = io.BytesIO()
    np.savez(buf, images=images, labels=labels, classes=np.array(CLASSES), **extra)
    return buf.getvalue()


def cifar_batch(labels: list[int]) -> bytes:
    """CIFAR-10 binary records: a label byte then 3072 bytes of 32x32 planar RGB."""
    rows = [bytes([label]) + bytes([label * 20]) * 3072 for label in labels]
    return b"".join(rows)


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
