"""``synthgen preview MODEL [--labels 3,7] [--scale N] [--out grid.png]``: a grid in
seconds, saved to a file and, on a terminal that shows images (iTerm2, WezTerm, kitty),
drawn inline. The server scales it (nearest neighbour): by default until its short side
is at least 256 px, since samples of 8 to 32 px make a grid too small to look at."""

from __future__ import annotations

import argparse
import base64
import os
import struct
import sys
from pathlib import Path
from typing import Any

from synthgen_client.cli import output
from synthgen_client.cli.errors import UsageError
from synthgen_client.sdk import Client


def _labels(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise UsageError(f"--labels takes class numbers like 3,7, not {text!r}") from exc


def _scale(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        scale = int(text)
    except ValueError:
        scale = 0
    if not 1 <= scale <= MAX_SCALE:
        raise argparse.ArgumentTypeError(f"takes auto or a whole number 1 to {MAX_SCALE}")
    return scale


MAX_SCALE = 16  # the API's bound (core/previews/schemas.py)


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk (bytes 16 to 24)."""
    width, height = struct.unpack(">II", png[16:24])
    return int(width), int(height)


def inline_image(png: bytes) -> str | None:
    """The escape sequence that draws ``png`` on this terminal, or None if it cannot."""
    data = base64.b64encode(png).decode()
    if os.environ.get("TERM_PROGRAM") in {"iTerm.app", "WezTerm"}:
        return f"\033]1337;File=inline=1;size={len(png)}:{data}\a"
    if os.environ.get("KITTY_WINDOW_ID") or os.environ.get("TERM") == "xterm-kitty":
        chunks = [data[i : i + 4096] for i in range(0, len(data), 4096)]
        return "".join(
            f"\033_G{'a=T,f=100,' if i == 0 else ''}m={int(i < len(chunks) - 1)};{chunk}\033\\"
            for i, chunk in enumerate(chunks)
        )
    return None


def run(client: Client, args: argparse.Namespace) -> int:
    options = {
        k: v
        for k, v in {
            "steps": args.steps,
            "guidance_scale": args.guidance,
            "sampler": args.sampler,
        }.items()
        if v is not None
    }
    image = client.preview(
        args.model,
        labels=_labels(args.labels),
        count=args.count,
        seed=args.seed,
        scale=args.scale,
        **options,
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(image.png)
    if args.json:
        output.print_json(
            {
                "path": str(out),
                "bytes": len(image.png),
                "width": png_size(image.png)[0],
                "height": png_size(image.png)[1],
                "model_version": image.model_version,
                "cache_hit": image.cache_hit,
                "preview_id": image.preview_id,
            }
        )
        return 0
    drawn = inline_image(image.png) if sys.stdout.isatty() and not args.no_inline else None
    if drawn:
        print(drawn)
    cached = "model was loaded" if image.cache_hit else "model loaded now"
    width, height = png_size(image.png)
    size = output.human_size(len(image.png))
    print(f"saved {out} ({width}×{height} px, {size}) from {image.model_version}; {cached}")
    return 0


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "preview", help="a grid of a model's samples, one row per class", parents=[common]
    )
    p.add_argument("model", help="name, name:VERSION, name@ALIAS or a version id")
    p.add_argument("--labels", help="classes, one row each: 3,7 (default: every class)")
    p.add_argument("--count", type=int, help="images in the grid, at most 64")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--scale",
        type=_scale,
        default="auto",
        help="draw each pixel N×N (nearest neighbour), 1 for the samples' own size "
        "(default auto: the grid's short side at least 256 px)",
    )
    p.add_argument("--steps", type=int, help="sampling steps (ddpm, ebm)")
    p.add_argument("--guidance", type=float, help="guidance scale (ddpm)")
    p.add_argument(
        "--sampler",
        choices=["ddim", "ddpm", "dpm_solver_multistep", "unipc"],
        help="sampler (ddpm)",
    )
    p.add_argument("--out", default="preview.png", help="where to save the PNG")
    p.add_argument("--no-inline", action="store_true", help="never draw it in the terminal")
    p.set_defaults(run=run)
