"""Does the memorization audit catch planted copies, and how long does it take?

(a) Planted copies. The training split is ``<dataset>:train``; the test split, never
trained on, stands in for a generator's output. Its images are split in two halves: the
first plays the generated set, the second the held-out split of the audit. Into the
generated half go copies of training images, ``--planted`` (1 %) of it per round, cycling
three kinds: exact copies, copies with uniform ±2/255 noise on every pixel, and copies
moved one pixel in one of the 8 directions (black fill). Over ``--rounds`` rounds (fresh
training images each): the recall of the planted copies per kind and criterion, and the
false flags among the real test images (both halves: the generated half and the floor),
once with the audit's pixel distance (ℓ2, minimum over ±1 px translations) and once with
the plain ℓ2, which is what the translation costs and buys.

(b) Speed: ``--speed-queries`` generated images against ``--speed-rows`` training images
and ``--speed-holdout`` held-out ones at the dataset's size, through ``audit`` end to end,
with ``--threads`` torch threads; rows are the dataset's images repeated with ±2/255 noise
(the time does not depend on the content).

    python bench/privacy_audit.py --root /work/shared/data/mnist-t10k --threads 2

Writes bench/results/privacy-audit.json and prints the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: models.*

from models import datasets  # noqa: E402
from models.metrics import memorization  # noqa: E402
from models.metrics.memorization_figures import (  # noqa: E402
    HEADLINE,
    ImageScores,
    MemorizationConfig,
)

RESULTS = Path(__file__).parent / "results"
KINDS = ("exact", "noise", "shift")
CRITERIA = ("ratio", "calibrated", "authenticity")
MOVES = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]


def plant(train: torch.Tensor, count: int, rng: np.random.Generator) -> tuple[torch.Tensor, list]:
    """``count`` copies of distinct training images (uint8 (n, c, h, w)), kinds in turn."""
    chosen = rng.choice(len(train), size=count, replace=False)
    copies, kinds = [], []
    for i, index in enumerate(chosen):
        kind = KINDS[i % len(KINDS)]
        image = train[index].to(torch.int16)
        if kind == "noise":
            noise = rng.integers(-2, 3, size=tuple(image.shape))
            image = (image + torch.from_numpy(noise).to(torch.int16)).clamp(0, 255)
        elif kind == "shift":
            dy, dx = MOVES[rng.integers(len(MOVES))]
            image = move(image, dy, dx)
        copies.append(image.to(torch.uint8))
        kinds.append(kind)
    return torch.stack(copies), kinds


def move(image: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """(c, h, w) moved ``dy`` px down and ``dx`` px right, black fill."""
    h, w = image.shape[-2:]
    out = torch.zeros_like(image)
    out[..., max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = image[
        ..., max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


def flags(scores: ImageScores) -> dict[str, np.ndarray]:
    return {
        "ratio": scores.copies("ratio"),
        "calibrated": scores.copies("calibrated"),
        "authenticity": ~scores.authentic,
    }


def planted(train, test, *, rounds: int, fraction: float, shift: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    order = torch.from_numpy(rng.permutation(len(test)))
    fake_real, holdout = test[order[: len(test) // 2]], test[order[len(test) // 2 :]]
    per_round = max(1, round(fraction * len(fake_real)))
    pixels = train.float() / 255
    caught = {kind: {c: 0 for c in CRITERIA} for kind in KINDS}
    counts = dict.fromkeys(KINDS, 0)
    config = MemorizationConfig(shift=shift, resamples=200)
    first = None
    for r in range(rounds):
        copies, kinds = plant(train, per_round, rng)
        generated = torch.cat([fake_real, copies]).float() / 255
        result = memorization.audit(
            generated, pixels, holdout.float() / 255, space="pixels", seed=seed + r, config=config
        )
        flagged = flags(result.generated)
        for i, kind in enumerate(kinds):
            counts[kind] += 1
            for c in CRITERIA:
                caught[kind][c] += int(flagged[c][len(fake_real) + i])
        if first is None:
            first = result
    real = {
        c: np.concatenate([f[: len(fake_real)], h])
        for (c, f), h in zip(
            flags(first.generated).items(), flags(first.holdout).values(), strict=True
        )
    }
    return {
        "distance": first.distance,
        "rounds": rounds,
        "planted_per_round": per_round,
        "real_images": len(test),
        "recall": {kind: {c: caught[kind][c] / counts[kind] for c in CRITERIA} for kind in KINDS},
        "recall_all": {
            c: sum(caught[k][c] for k in KINDS) / sum(counts.values()) for c in CRITERIA
        },
        "planted": counts,
        "false_flags": {c: float(v.mean()) for c, v in real.items()},
        "false_flag_counts": {c: int(v.sum()) for c, v in real.items()},
        "round_0": first.to_dict(),
    }


def speed(images: torch.Tensor, *, queries: int, rows: int, holdout: int, shift: int) -> dict:
    """Seconds for one ``audit`` of ``queries`` against ``rows`` training images."""
    generator = torch.Generator().manual_seed(0)

    def perturbed(n: int) -> torch.Tensor:
        base = images.repeat((n + len(images) - 1) // len(images), 1, 1, 1)[:n].to(torch.int16)
        noise = torch.randint(-2, 3, base.shape, generator=generator, dtype=torch.int16)
        return (base + noise).clamp(0, 255).float() / 255

    generated, train, held = perturbed(queries), perturbed(rows), perturbed(holdout)
    started = time.monotonic()
    memorization.audit(
        generated, train, held, space="pixels", seed=0, config=MemorizationConfig(shift=shift)
    )
    return {
        "seconds": time.monotonic() - started,
        "queries": queries,
        "rows": rows,
        "holdout": holdout,
        "shift": shift,
        "image_shape": list(images.shape[1:]),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="mnist_t10k")
    parser.add_argument("--root", default=None)
    parser.add_argument("--image-size", type=int, default=None, help="default: native size")
    parser.add_argument("--planted", type=float, default=0.01, help="share of each round")
    parser.add_argument("--rounds", type=int, default=30, help="0: the speed figures only")
    parser.add_argument("--speed-queries", type=int, default=10_000)
    parser.add_argument("--speed-rows", type=int, default=60_000)
    parser.add_argument("--speed-holdout", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--note", default="", help="e.g. what else loaded the machine")
    parser.add_argument("--out", type=Path, default=RESULTS / "privacy-audit.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.out.parent.mkdir(parents=True, exist_ok=True)

    train = datasets.load(args.dataset, "train", args.image_size, args.root).images
    test = datasets.load(args.dataset, "test", args.image_size, args.root).images
    report: dict = {
        "dataset": args.dataset,
        "image_shape": list(train.shape[1:]),
        "train": len(train),
        "test": len(test),
        "threads": args.threads,
        "note": args.note,
        "load_average_at_start": list(os.getloadavg()),
        "headline": HEADLINE,
        "planted": {},
        "speed": {},
    }
    for name, shift in (("translation-tolerant", 1), ("plain-l2", 0)) if args.rounds else ():
        result = planted(
            train, test, rounds=args.rounds, fraction=args.planted, shift=shift, seed=args.seed
        )
        report["planted"][name] = result
        print(f"planted copies, {result['distance']}:")
        for c in CRITERIA:
            per_kind = ", ".join(f"{k} {result['recall'][k][c]:.1%}" for k in KINDS)
            print(
                f"  {c:12s} recall {result['recall_all'][c]:.1%} ({per_kind}); false flags "
                f"{result['false_flags'][c]:.2%} ({result['false_flag_counts'][c]} of "
                f"{result['real_images']} real)"
            )
        args.out.write_text(json.dumps(report, indent=1))
    all_images = torch.cat([train, test])
    for name, shift in (("translation-tolerant", 1), ("plain-l2", 0)):
        result = speed(
            all_images,
            queries=args.speed_queries,
            rows=args.speed_rows,
            holdout=args.speed_holdout,
            shift=shift,
        )
        result["load_average_after"] = list(os.getloadavg())
        report["speed"][name] = result
        print(
            f"speed, {name}: {result['queries']:,} generated vs {result['rows']:,} training "
            f"(+ {result['holdout']:,} held-out) in {result['seconds']:.1f} s, "
            f"{args.threads} threads"
        )
        args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
