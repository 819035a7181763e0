"""Uploaded datasets read from a file: an ``.npz`` or an ImageFolder zip (split from
models/datasets.py, which re-exports both loaders; both build on models/image_data.py)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from models.image_data import IMAGE_SUFFIXES, DatasetError, ImageDataset, from_numpy, resize

if TYPE_CHECKING:
    import numpy as np


def load_npz(path: str | Path, image_size: int | None = None) -> ImageDataset:
    """An uploaded ``.npz``: ``images`` uint8 (n, h, w), (n, h, w, c) or (n, c, h, w) with
    c in {1, 3}; ``labels`` integers in [0, k); optional ``classes`` (or ``class_names``,
    k strings)."""
    import numpy as np

    path = Path(path)
    try:
        # allow_pickle=False: an upload must never run code when it is read.
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise DatasetError(f"{path.name} is not a readable .npz without pickles: {error}") from None
    for key in ("images", "labels"):
        if key not in arrays:
            raise DatasetError(f"{path.name} has no {key!r} array; it has {sorted(arrays)}")
    images = _to_nchw(arrays["images"], path.name)
    labels = arrays["labels"]
    if labels.ndim != 1 or len(labels) != len(images):
        raise DatasetError(
            f"labels must be a 1-D array of {len(images)} integers, got shape {labels.shape}"
        )
    if not np.issubdtype(labels.dtype, np.integer):
        raise DatasetError(f"labels must be integers, got {labels.dtype}")
    names_key = next((k for k in ("classes", "class_names") if k in arrays), None)
    if names_key is not None:
        class_names = [str(c) for c in arrays[names_key].tolist()]
    else:
        class_names = [str(i) for i in range(int(labels.max(initial=-1)) + 1)]
    if len(labels) and (labels.min() < 0 or labels.max() >= len(class_names)):
        raise DatasetError(
            f"labels must lie in [0, {len(class_names)}), got [{labels.min()}, {labels.max()}]"
        )
    data = from_numpy(path.stem, "all", images, labels, class_names)
    if image_size is not None:
        data.images = resize(data.images, image_size)
    return data


def _to_nchw(images: np.ndarray, source: str) -> np.ndarray:
    """uint8 (n, h, w) | (n, h, w, c) | (n, c, h, w) -> contiguous uint8 (n, c, h, w)."""
    import numpy as np

    if images.dtype != np.uint8:
        raise DatasetError(f"images in {source} must be uint8 in 0..255, got {images.dtype}")
    if images.ndim == 3:
        return np.ascontiguousarray(images[:, None])
    if images.ndim == 4 and images.shape[3] in (1, 3):
        return np.ascontiguousarray(images.transpose(0, 3, 1, 2))
    if images.ndim == 4 and images.shape[1] in (1, 3):
        return np.ascontiguousarray(images)
    raise DatasetError(
        f"images in {source} have shape {images.shape}; expected (n, h, w), (n, h, w, c) "
        "or (n, c, h, w) with c = 1 or 3"
    )


def load_imagefolder_zip(path: str | Path, image_size: int | None = None) -> ImageDataset:
    """An uploaded zip laid out as ``class_name/xxx.png`` (an enclosing folder is fine).

    Classes are the folder names sorted (torchvision's ImageFolder order). Images are
    decoded in memory, never extracted, so member names cannot escape anywhere. All
    grayscale -> 1 channel, otherwise RGB. Sizes must agree unless ``image_size`` is given.
    """
    import numpy as np
    from PIL import Image

    path = Path(path)
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as error:
        raise DatasetError(f"{path.name} is not a zip archive: {error}") from None
    with archive:
        members = _image_members(archive, path.name)
        class_names = sorted({folder for folder, _ in members})
        pictures: list[Image.Image] = []
        labels: list[int] = []
        for folder, member in members:
            try:
                with Image.open(io.BytesIO(archive.read(member))) as picture:
                    picture.load()
            except (OSError, Image.DecompressionBombError) as error:
                raise DatasetError(
                    f"{member} in {path.name} is not a readable image: {error}"
                ) from None
            pictures.append(picture)
            labels.append(class_names.index(folder))
    mode = "L" if all(p.mode in ("1", "L", "I;16") for p in pictures) else "RGB"
    if image_size is not None:
        pictures = [
            p if p.size == (image_size, image_size)
            else p.convert(mode).resize((image_size, image_size), Image.Resampling.BILINEAR)
            for p in pictures
        ]  # fmt: skip
    sizes = sorted({p.size for p in pictures})
    if len(sizes) > 1:
        raise DatasetError(
            f"images in {path.name} have different sizes {sizes[:5]}; pass image_size to resize"
        )
    arrays = [np.asarray(p.convert(mode), dtype=np.uint8) for p in pictures]
    images = _to_nchw(np.stack(arrays), path.name)
    return from_numpy(path.stem, "all", images, np.asarray(labels), class_names)


def _image_members(archive: zipfile.ZipFile, source: str) -> list[tuple[str, str]]:
    """(class folder, member name) of every image, sorted; strips one enclosing folder."""
    entries = [
        (PurePosixPath(info.filename).parts, info.filename)
        for info in archive.infolist()
        if not info.is_dir()
        and info.filename.lower().endswith(IMAGE_SUFFIXES)
        and "__MACOSX" not in info.filename
    ]
    if entries and all(len(parts) == 3 for parts, _ in entries):
        if len({parts[0] for parts, _ in entries}) == 1:
            entries = [(parts[1:], name) for parts, name in entries]
    if not entries or any(len(parts) != 2 for parts, _ in entries):
        raise DatasetError(
            f"{source} must hold images as class_name/image.png (one folder per class); "
            f"found {[name for _, name in entries[:5]] or 'no images'}"
        )
    return sorted((parts[0], name) for parts, name in entries)
