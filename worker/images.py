"""Images as PNG bytes and grids of them: what every handler that shows images shares.

Images are uint8 ``(c, h, w)`` with c in {1, 3}; a batch is ``(n, c, h, w)``.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def to_pil(image: np.ndarray) -> Image.Image:
    """image: uint8 (c, h, w) with c in {1, 3}."""
    if image.shape[0] == 1:
        return Image.fromarray(image[0], mode="L")
    return Image.fromarray(np.ascontiguousarray(image.transpose(1, 2, 0)), mode="RGB")


def png_bytes(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    to_pil(image).save(buf, format="PNG")
    return buf.getvalue()


def decode_png(data: bytes) -> np.ndarray:
    """The inverse of :func:`png_bytes`: uint8 (c, h, w)."""
    img = np.asarray(Image.open(io.BytesIO(data)))
    return img[None] if img.ndim == 2 else img.transpose(2, 0, 1)


GUTTER = 2  # px between a grid's images and around them, before scaling


def grid_shape(n: int, nrow: int, h: int, w: int) -> tuple[int, int]:
    """(height, width) in px of the grid of ``n`` h×w images, ``nrow`` a row, unscaled."""
    rows = (n + nrow - 1) // nrow
    return rows * (h + GUTTER) + GUTTER, nrow * (w + GUTTER) + GUTTER


def grid_png(images: np.ndarray, nrow: int, scale: int = 1) -> bytes:
    """images: uint8 (n, c, h, w) → one PNG with ``nrow`` images per row and 2px gutters,
    each pixel drawn ``scale``×``scale`` (nearest neighbour)."""
    n, c, h, w = images.shape
    rows = (n + nrow - 1) // nrow
    pad = GUTTER
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
