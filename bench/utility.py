"""Does synthetic data help a classifier that has only a few real images per class?

For each seed: draw ``--per-class`` real images of each class from ``<dataset>:train``,
train a class-conditional DDPM on exactly that subset, sample ``--synthetic-per-class``
images of each class, then train the same small CNN (``models.metrics.classifier``) on

- the real subset alone,
- the real subset + the synthetic images,
- the synthetic images alone (TSTR),

and score each on the whole ``<dataset>:test`` split. The generator and the classifiers
see the same real images, and none of them sees the test split, so the gain is what the
generator adds to those images, not leaked real data. TRTR (the whole train split) is
printed as the ceiling. Mean ± std over seeds; the subset, generator and classifier all
change with the seed.

    python bench/utility.py                                    # digits 16px and mnist_t10k
    python bench/utility.py --datasets digits --ddpm-steps 300 --seeds 0,1,2   # a quick run

Writes bench/out/utility-<dataset>.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models import datasets, engines  # noqa: E402
from models.datasets import ImageDataset  # noqa: E402
from models.metrics import classifier as classifiers  # noqa: E402
from models.metrics.utility import DataDescription, per_class_subset  # noqa: E402

OUT = Path(__file__).parent / "out"
ROOTS = {"mnist_t10k": "/work/shared/data/mnist-t10k"}
SIZES = {"digits": 16, "mnist_t10k": 28}


def accuracy(
    images: torch.Tensor, labels: torch.Tensor, test: ImageDataset, seed: int, cfg
) -> float:
    model = classifiers.train_classifier(
        lambda: classifiers.build(cfg, images.shape[1], test.num_classes),
        images,
        labels,
        cfg,
        seed,
    )
    return classifiers.accuracy(model, test.images, test.labels)


def run_seed(train, test, args, seed: int, cfg) -> dict[str, float]:
    idx = per_class_subset(train.labels, args.per_class, seed)
    subset = ImageDataset(
        train.name,
        "train",
        train.images[idx],
        train.labels[idx],
        train.num_classes,
        train.class_names,
    )
    started = time.monotonic()
    engine = engines.get("ddpm")
    trained = engine.train(
        subset,
        # The engine's defaults for the image size, as a user who sets only a dataset gets.
        {"max_steps": args.ddpm_steps, "seed": seed, "conditional": True, **args.ddpm_config},
    )
    train_s = time.monotonic() - started
    wanted = torch.arange(train.num_classes).repeat_interleave(args.synthetic_per_class)
    synthetic = engine.sample(
        trained, wanted.numel(), labels=wanted, seed=seed, steps=args.ddim_steps
    )
    real_only = accuracy(subset.images, subset.labels, test, seed, cfg)
    augmented = accuracy(
        torch.cat([subset.images, synthetic]), torch.cat([subset.labels, wanted]), test, seed, cfg
    )
    tstr = accuracy(synthetic, wanted, test, seed, cfg)
    return {
        "real": real_only,
        "real+synthetic": augmented,
        "gain": augmented - real_only,
        "tstr": tstr,
        "ddpm_train_seconds": train_s,
        "real_images": len(subset),
        "synthetic_images": wanted.numel(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default="digits,mnist_t10k")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--per-class", type=int, default=20, help="real images per class")
    parser.add_argument("--synthetic-per-class", type=int, default=100)
    parser.add_argument("--ddpm-steps", type=int, default=1500)
    parser.add_argument(
        "--ddpm-config", type=json.loads, default={}, help="more ddpm config, e.g. '{\"lr\": 5e-4}'"
    )
    parser.add_argument("--ddim-steps", type=int, default=50)
    parser.add_argument("--classifier-epochs", type=int, default=10)
    # On a shared CPU, OpenMP threads spinning on busy cores slow small convolutions down.
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    OUT.mkdir(parents=True, exist_ok=True)
    seeds = [int(s) for s in args.seeds.split(",")]
    cfg = classifiers.ClassifierConfig(epochs=args.classifier_epochs)

    for name in args.datasets.split(","):
        size, root = SIZES.get(name), ROOTS.get(name)
        train = datasets.load(name, "train", image_size=size, root=root)
        test = datasets.load(name, "test", image_size=size, root=root)
        trtr = [accuracy(train.images, train.labels, test, s, cfg) for s in seeds]
        rows = [run_seed(train, test, args, s, cfg) for s in seeds]
        seen = DataDescription(
            name, "train", rows[0]["real_images"], f"{args.per_class} per class, one draw per seed"
        )
        summary = {
            key: (float(np.mean([r[key] for r in rows])), float(np.std([r[key] for r in rows])))
            for key in ("real", "real+synthetic", "gain", "tstr", "ddpm_train_seconds")
        }
        summary["trtr"] = (float(np.mean(trtr)), float(np.std(trtr)))
        statement = (
            f"Generator and classifiers saw {seen}; accuracies on all {len(test)} images of "
            f"{name}:test, seen by no model. TRTR classifiers saw all {len(train)} train images."
        )
        print(f"\n{name} {size}px, seeds {seeds}: {statement}")
        for key, (mean, std) in summary.items():
            scale, unit = {"ddpm_train_seconds": (1, "s"), "gain": (100, "points")}.get(
                key, (100, "%")
            )
            print(f"  {key:22s} {mean * scale:7.2f} ± {std * scale:5.2f} {unit}")
        (OUT / f"utility-{name}.json").write_text(
            json.dumps(
                {
                    "args": vars(args),
                    "seeds": seeds,
                    "per_seed": rows,
                    "trtr": trtr,
                    "summary": summary,
                    "data_seen": statement,
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
