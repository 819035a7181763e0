"""Figures for the HTML report, drawn with PIL and inline SVG (matplotlib is not a
dependency): a class-per-row sample grid, a t-SNE scatter, training curves.

PNGs are returned as bytes; the report embeds them as base64 data URIs.
"""

from __future__ import annotations

import html
import io
import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE

REAL_COLOUR = (31, 119, 180)
SYNTHETIC_COLOUR = (255, 127, 14)
CURVE_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def sample_grid(
    images: Mapping[int, torch.Tensor], class_names: Sequence[str], cell: int = 48
) -> bytes:
    """One row per class: {label: uint8 (k, c, h, w)} -> PNG with the class name at left.

    Images are scaled up by an integer factor with nearest-neighbour sampling, so 8 px
    digits stay sharp rather than blurred.
    """
    font = ImageFont.load_default()
    label_width = 10 + max(int(font.getlength(n)) for n in class_names)
    per_row = max((v.shape[0] for v in images.values()), default=1)
    rows = sorted(images)
    sheet = Image.new("RGB", (label_width + per_row * (cell + 2), len(rows) * (cell + 2)), "white")
    draw = ImageDraw.Draw(sheet)
    for r, label in enumerate(rows):
        y = r * (cell + 2)
        draw.text((4, y + cell // 2 - 6), class_names[label], fill="black", font=font)
        for i, img in enumerate(images[label]):
            array = img.permute(1, 2, 0).numpy()
            mode = "L" if array.shape[2] == 1 else "RGB"
            tile = Image.fromarray(array[:, :, 0] if mode == "L" else array, mode)
            scale = max(1, cell // max(tile.size))
            tile = tile.resize((tile.width * scale, tile.height * scale), Image.NEAREST)
            sheet.paste(tile.convert("RGB"), (label_width + i * (cell + 2), y))
    return png_bytes(sheet)


def tsne_embedding(real: np.ndarray, synthetic: np.ndarray, seed: int) -> np.ndarray:
    """real (n, d), synthetic (m, d) -> (n + m, 2), PCA to ≤50 dims first as t-SNE advises."""
    x = np.concatenate([real, synthetic]).astype(np.float64)
    components = min(50, x.shape[0] - 1, x.shape[1])
    reduced = PCA(n_components=components, random_state=seed).fit_transform(x)
    perplexity = float(min(30, (x.shape[0] - 1) / 3))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(
        reduced
    )


def tsne_figure(real: np.ndarray, synthetic: np.ndarray, points: int, seed: int) -> bytes | None:
    """A t-SNE scatter PNG of up to ``points`` of each feature set (n, d); None when a set
    has fewer than 5 items."""
    if min(real.shape[0], synthetic.shape[0]) < 5:
        return None
    rng = np.random.default_rng(seed)
    # A random draw from the kept items: they sit in stream order, which may be class order.
    real = real[rng.permutation(real.shape[0])[:points]]
    synthetic = synthetic[rng.permutation(synthetic.shape[0])[:points]]
    embedding = tsne_embedding(real, synthetic, seed)
    is_synthetic = np.r_[np.zeros(real.shape[0], bool), np.ones(synthetic.shape[0], bool)]
    return scatter(embedding, is_synthetic)


def scatter(points: np.ndarray, is_synthetic: np.ndarray, size: int = 480) -> bytes:
    """points (n, 2), is_synthetic (n,) bool -> PNG scatter with a legend."""
    margin = 16
    image = Image.new("RGB", (size, size + 24), "white")
    draw = ImageDraw.Draw(image)
    lo, hi = points.min(axis=0), points.max(axis=0)
    span = np.where(hi - lo > 0, hi - lo, 1.0)
    xy = margin + (points - lo) / span * (size - 2 * margin)
    order = np.argsort(is_synthetic, kind="stable")  # real first, synthetic drawn on top
    for (x, y), synthetic in zip(xy[order], is_synthetic[order], strict=True):
        colour = SYNTHETIC_COLOUR if synthetic else REAL_COLOUR
        draw.ellipse((x - 2, size - y - 2, x + 2, size - y + 2), fill=colour)
    for i, (name, colour) in enumerate((("real", REAL_COLOUR), ("synthetic", SYNTHETIC_COLOUR))):
        x0 = margin + i * 110
        draw.ellipse((x0, size + 6, x0 + 10, size + 16), fill=colour)
        draw.text((x0 + 16, size + 5), name, fill="black")
    return png_bytes(image)


def curves_svg(points: Sequence[Mapping[str, float]], width: int = 640) -> str:
    """Training curves as inline SVG: one panel per numeric key besides ``step``.

    points: [{"step": 0, "loss": 1.2, "lr": 2e-4, ...}, ...]. Each key gets its own y axis
    (a loss and a learning rate share no scale), logarithmic when all its values are
    positive and span more than a factor of 20, as losses usually do.
    """
    keys = sorted({k for p in points for k in p if k != "step"})
    panels = [
        _curve_panel(points, key, width, CURVE_COLOURS[i % len(CURVE_COLOURS)])
        for i, key in enumerate(keys)
    ]
    panels = [p for p in panels if p]
    if not panels:
        return "<p>No training curve was recorded for this model version.</p>"
    return "".join(panels)


def _curve_panel(
    points: Sequence[Mapping[str, float]], key: str, width: int, colour: str, height: int = 180
) -> str:
    series = [
        (float(p["step"]), float(p[key])) for p in points if key in p and math.isfinite(p[key])
    ]
    if not series:
        return ""
    steps, values = [s for s, _ in series], [v for _, v in series]
    log = min(values) > 0 and max(values) / min(values) > 20
    scale = math.log10 if log else (lambda v: v)
    v_lo, v_hi = scale(min(values)), scale(max(values))
    s_lo, s_hi = min(steps), max(steps)
    left, right, top, bottom = 64, 16, 22, 30
    plot_w, plot_h = width - left - right, height - top - bottom

    def x_of(step: float) -> float:
        return left + (step - s_lo) / ((s_hi - s_lo) or 1) * plot_w

    def y_of(value: float) -> float:
        return top + (1 - (scale(value) - v_lo) / ((v_hi - v_lo) or 1)) * plot_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="sans-serif" font-size="11">',
        f'<text x="{left}" y="14" font-weight="bold">{html.escape(key)}'
        f"{' (log scale)' if log else ''}</text>",
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" '
        'fill="none" stroke="#999"/>',
    ]
    for frac in (0.0, 0.5, 1.0):
        raw = v_lo + frac * (v_hi - v_lo)
        label = f"{10**raw:.3g}" if log else f"{raw:.3g}"
        y = top + (1 - frac) * plot_h
        parts.append(f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{label}</text>')
        step = s_lo + frac * (s_hi - s_lo)
        parts.append(
            f'<text x="{x_of(step):.1f}" y="{height - 16}" text-anchor="middle">{step:.0f}</text>'
        )
    parts.append(f'<text x="{left + plot_w / 2}" y="{height - 3}" text-anchor="middle">step</text>')
    coords = " ".join(f"{x_of(s):.1f},{y_of(v):.1f}" for s, v in series)
    parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{coords}"/>')
    parts.append("</svg>")
    return "".join(parts)


def pair_png(generated: torch.Tensor, nearest: torch.Tensor, cell: int = 64) -> bytes:
    """A synthetic image (left) beside its nearest training image (right): uint8 (c, h, w)
    each, scaled up by an integer factor with nearest-neighbour sampling."""
    tiles = []
    for image in (generated, nearest):
        array = image.permute(1, 2, 0).cpu().numpy()
        tile = (
            Image.fromarray(array[:, :, 0], "L") if array.shape[2] == 1 else Image.fromarray(array)
        )
        scale = max(1, cell // max(tile.size))
        tiles.append(tile.resize((tile.width * scale, tile.height * scale), Image.NEAREST))
    sheet = Image.new("RGB", (tiles[0].width * 2 + 4, tiles[0].height), "white")
    sheet.paste(tiles[0].convert("RGB"), (0, 0))
    sheet.paste(tiles[1].convert("RGB"), (tiles[0].width + 4, 0))
    return png_bytes(sheet)
