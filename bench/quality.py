"""Sample quality of each engine after a fixed CPU-seconds budget.

For every engine: train on ``<dataset>:train`` for ``--seconds`` (the engine's
``max_seconds``), draw ``--per-class`` samples of every class, and score them with a
small CNN trained on the real train split (``models.metrics``' dataset classifier):

- label agreement: the classifier names the class the sample was conditioned on;
- TSTR: a fresh classifier trained on the samples alone, accuracy on the real test split
  (Ravuri & Vinyals 2019, "Classification Accuracy Score");
- FD: Fréchet distance between samples and the real test split in the classifier's
  128-d feature space; "floor" is the same distance for as many real train images.

    python bench/quality.py                                  # ddpm, gan, ebm on digits 16px
    python bench/quality.py --engines gan,ebm --seconds 60
    python bench/quality.py --dataset mnist_t10k --root /work/shared/data/mnist-t10k \
        --image-size 28 --seconds 600

Writes a sample grid per engine (one row per class) and the figures as JSON to bench/out/.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from models import datasets, engine_options, engines
from models.engines.base import Trained
from models.engines.runtime import devices
from models.metrics import classifier as classifiers
from models.metrics.features import ClassifierFeatures, dataset_classifier
from models.metrics.frechet import frechet_distance

OUT = Path(__file__).parent / "out"


def fd(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to features a (n, d) and b (m, d)."""
    return frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))


def save_grid(images: torch.Tensor, labels: torch.Tensor, path: Path, per_row: int = 10) -> None:
    """uint8 (n, c, h, w) → PNG with one row per class (first ``per_row`` of each), ×2."""
    rows = []
    for label in labels.unique(sorted=True):
        picked = images[labels == label][:per_row]
        rows.append(torch.cat(list(picked), dim=2))  # (c, h, per_row·w)
    grid = torch.cat(rows, dim=1).permute(1, 2, 0)  # (classes·h, per_row·w, c)
    mode = "L" if grid.shape[2] == 1 else "RGB"
    # PIL reads the buffer as if it were C-ordered: a permuted view would come out scrambled.
    pixels = np.ascontiguousarray((grid[..., 0] if mode == "L" else grid).numpy())
    picture = Image.fromarray(pixels, mode)
    picture.resize((picture.width * 2, picture.height * 2), Image.NEAREST).save(path)


def score(
    samples: torch.Tensor,
    labels: torch.Tensor,
    reference: ClassifierFeatures,
    test: datasets.ImageDataset,
    test_features: np.ndarray,
) -> dict[str, float]:
    features, logits = reference.with_logits(samples)
    tstr_model = classifiers.train_classifier(
        lambda: classifiers.SmallCNN(samples.shape[1], test.num_classes),
        samples,
        labels,
        classifiers.ClassifierConfig(),
        seed=0,
    )
    return {
        "label_agreement": float((logits.argmax(1) == labels.numpy()).mean()),
        "tstr": classifiers.accuracy(tstr_model, test.images, test.labels),
        "fd": fd(features, test_features),
    }


def sweep_score(
    engine: engines.Engine,
    trained: Trained,
    n: int,
    labels: torch.Tensor,
    seed: int,
    opts: dict[str, object],
    score_args: tuple[ClassifierFeatures, datasets.ImageDataset, np.ndarray],
) -> dict[str, float]:
    """Score ``trained`` sampled with ``opts``; ``"fp32": true`` turns the bf16 autocast off."""
    sample_opts = {k: v for k, v in opts.items() if k != "fp32"}
    autocast = devices.autocast
    if opts.get("fp32"):
        devices.autocast = lambda device: contextlib.nullcontext()  # type: ignore[assignment]
    try:
        samples = engine.sample(trained, n, labels=labels, seed=seed, **sample_opts)
    finally:
        devices.autocast = autocast  # type: ignore[assignment]
    return score(samples, labels, *score_args)


def most_steps(engine: str) -> int:
    """The largest ``max_steps`` the engine takes: with it, ``max_seconds`` ends the run."""
    options = engine_options.describe(engine)["options"]
    return int(next(o["max"] for o in options if o["name"] == "max_steps"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engines", default="ddpm,gan,ebm")
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--root", default=None, help="dataset files (mnist_t10k needs it)")
    parser.add_argument("--image-size", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=150.0)
    parser.add_argument(
        "--defaults",
        action="store_true",
        help="train with the engine's own budget (default max_steps), as a job that sets "
        "only `dataset` does; --seconds is then ignored",
    )
    parser.add_argument("--out", type=Path, default=OUT, help="where grids and JSON go")
    parser.add_argument(
        "--sample-sweep",
        type=json.loads,
        default=[],
        metavar="JSON",
        help="extra sampler settings scored on the same trained model, e.g. "
        '\'[{"steps": 200}, {"guidance_scale": 3.0, "fp32": true}]\' ("fp32": sample without '
        "the bf16 autocast a GPU uses)",
    )
    parser.add_argument("--per-class", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="ENGINE.KEY=JSON",
        help="override a config value, e.g. --set gan.width=16",
    )
    # On a shared CPU, OpenMP threads spinning on busy cores make small convolutions many
    # times slower than one thread; raise this on a machine of your own.
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    train = datasets.load(args.dataset, "train", args.image_size, args.root)
    test = datasets.load(args.dataset, "test", args.image_size, args.root)
    reference = dataset_classifier(train, test, out / "classifiers", seed=args.seed)
    test_features = reference(test.images)
    n = args.per_class * train.num_classes
    subset = torch.randperm(len(train), generator=torch.Generator().manual_seed(args.seed))[:n]
    floor = fd(reference(train.images[subset]), test_features)
    print(
        f"{args.dataset} {args.image_size}px: {len(train)} train / {len(test)} test images; "
        f"classifier test accuracy {reference.test_accuracy:.3f}; FD floor {floor:.2f}"
    )

    overrides: dict[str, dict[str, object]] = {}
    for item in args.set:
        key, _, value = item.partition("=")
        engine_name, _, field = key.partition(".")
        overrides.setdefault(engine_name, {})[field] = json.loads(value)

    results = {
        "dataset": args.dataset,
        "image_size": args.image_size,
        "seconds": "default budget" if args.defaults else args.seconds,
        "device": str(devices.pick_device()),
        "classifier_test_accuracy": reference.test_accuracy,
        "fd_floor": floor,
    }
    labels = torch.arange(train.num_classes).repeat_interleave(args.per_class)
    for name in args.engines.split(","):
        engine = engines.get(name)
        budget = (
            {} if args.defaults else {"max_steps": most_steps(name), "max_seconds": args.seconds}
        )
        config = {
            **budget,
            "seed": args.seed,
            "image_size": args.image_size,
            **overrides.get(name, {}),
        }
        trained: Trained = engine.train(train, config)
        started = time.monotonic()
        samples = engine.sample(trained, n, labels=labels, seed=args.seed)
        sample_seconds = time.monotonic() - started
        save_grid(samples, labels, out / f"quality-{args.dataset}-{name}.png")
        row = {
            "steps": trained.metrics["steps"],
            "train_seconds": trained.metrics["seconds"],
            "sample_seconds": sample_seconds,
            "config": config,
            **score(samples, labels, reference, test, test_features),
        }
        score_args = (reference, test, test_features)
        row["sweep"] = [
            {**opts, **sweep_score(engine, trained, n, labels, args.seed, opts, score_args)}
            for opts in args.sample_sweep
        ]
        results[name] = row
        for item in row["sweep"]:
            print(f"      {item}", flush=True)
        print(
            f"{name:5s} steps {row['steps']:6.0f}  train {row['train_seconds']:5.0f}s  "
            f"sample {sample_seconds:5.1f}s  label agreement {row['label_agreement']:.3f}  "
            f"TSTR {row['tstr']:.3f}  FD {row['fd']:7.2f} (floor {floor:.2f})",
            flush=True,
        )
    # Merge into an earlier run's file of the same setting, so engines benchmarked in
    # separate processes (side by side on two cores) end up in one JSON.
    path = out / f"quality-{args.dataset}.json"
    earlier = json.loads(path.read_text()) if path.exists() else {}
    setting = ("dataset", "image_size", "seconds")
    if all(earlier.get(key) == results[key] for key in setting):
        results = {**earlier, **results}
    path.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
