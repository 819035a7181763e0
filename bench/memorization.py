"""Memorising vs healthy: does the privacy audit tell a model that copies its training set
from one that does not, by a wide margin?

One ddpm recipe trained twice on MNIST (the real t10k split): on ``--small-per-class``
images of each class (20 images: Gu et al. 2023 find diffusion models memorise when the
training set is small) and on the whole train split (8,000 images), for the same steps.
Each draws ``--samples`` images, audited exactly as an evaluate job audits them
(:func:`models.metrics.privacy.audit`: copy fraction, DCR share and authenticity in pixels
and in the reference classifier's features, beside the real-vs-real floor; black-box and
white-box membership inference against the model's own training images).

    python bench/memorization.py --root ../shared/data/mnist-t10k --image-size 16 \
        --steps 3000 --samples 500 --threads 1

Trained models are kept in bench/out/memorization/ (reused on a re-run with the same
arguments); figures and the two copy galleries go to bench/results/.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from models import datasets, engines
from models.datasets import ImageDataset
from models.engines.base import Trained
from models.metrics import privacy
from models.metrics.collect import collect, dataset_batches
from models.metrics.features import dataset_classifier

OUT = Path(__file__).parent / "out" / "memorization"
RESULTS = Path(__file__).parent / "results"


def few_per_class(data: ImageDataset, per_class: int, seed: int) -> ImageDataset:
    """``per_class`` images of every class, drawn with a seeded generator."""
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for label in range(data.num_classes):
        of_class = torch.nonzero(data.labels == label).flatten()
        rows.append(of_class[torch.randperm(len(of_class), generator=generator)[:per_class]])
    index = torch.cat(rows)
    return ImageDataset(
        name=data.name,
        split=f"{data.split}[{per_class}/class]",
        images=data.images[index],
        labels=data.labels[index],
        num_classes=data.num_classes,
        class_names=data.class_names,
    )


def trained(
    recipe: str, data: ImageDataset, config: dict, directory: Path
) -> tuple[Trained, float]:
    """The recipe's model: loaded from ``directory`` when a run with this config saved it."""
    engine = engines.get("ddpm")
    stamp = directory / "recipe.json"
    if stamp.is_file() and json.loads(stamp.read_text()) == {"recipe": recipe, **config}:
        return engine.load(directory), float(json.loads((directory / "seconds").read_text()))
    started = time.perf_counter()
    model = engine.train(data, config)
    seconds = time.perf_counter() - started
    engine.save(model, directory)
    (directory / "seconds").write_text(json.dumps(seconds))
    stamp.write_text(json.dumps({"recipe": recipe, **config}))
    return engine.load(directory), seconds


def features_of(extractor, images: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    kept = collect(dataset_batches(images, labels, 250), [extractor], keep=len(images), seed=0)
    return kept.features[extractor.tag]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", required=True, help="the mnist-t10k files")
    parser.add_argument("--image-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--small-per-class", type=int, default=2)
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--sample-steps", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--recipes", default="small,full")
    parser.add_argument("--out", type=Path, default=RESULTS / "memorization.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    train = datasets.load("mnist_t10k", "train", args.image_size, args.root)
    test = datasets.load("mnist_t10k", "test", args.image_size, args.root)
    reference = dataset_classifier(train, test, OUT / "classifiers", seed=args.seed)
    sets = {"small": few_per_class(train, args.small_per_class, args.seed), "full": train}
    config = {"max_steps": args.steps, "image_size": args.image_size, "seed": args.seed}
    engine = engines.get("ddpm")
    figures = {"arguments": {k: str(v) for k, v in vars(args).items()}, "recipes": {}}
    for recipe in args.recipes.split(","):
        data = sets[recipe]
        model, train_seconds = trained(recipe, data, config, OUT / f"{recipe}-{args.image_size}")
        labels = torch.arange(args.samples) % data.num_classes
        started = time.perf_counter()
        samples = engine.sample(
            model, args.samples, labels, seed=args.seed, steps=args.sample_steps
        )
        sample_seconds = time.perf_counter() - started
        started = time.perf_counter()
        values, report = privacy.audit(
            wanted={"memorization", "membership_inference"},
            synthetic_images=samples,
            synthetic_features=features_of(reference, samples, labels),
            train_images=data.images,
            train_labels=data.labels,
            train_features=features_of(reference, data.images, data.labels),
            holdout_images=test.images,
            holdout_labels=test.labels,
            holdout_features=features_of(reference, test.images, test.labels),
            space=reference.name,
            inputs=privacy.PrivacyInputs(
                train=f"mnist_t10k:{data.split}",
                holdout="mnist_t10k:test",
                white_box=lambda x, y, m=model: engine.membership_scores(m, x, y, seed=0),
                white_box_name=engine.white_box_attack,
            ),
            seed=args.seed,
        )
        audit_seconds = time.perf_counter() - started
        gallery = RESULTS / f"memorization-{recipe}-{args.image_size}-gallery.html"
        gallery.write_text(f"<!DOCTYPE html><meta charset='utf-8'>{report.to_html()}")
        figures["recipes"][recipe] = {
            "train_images": len(data),
            "train_seconds": round(train_seconds, 1),
            "sample_seconds": round(sample_seconds, 1),
            "audit_seconds": round(audit_seconds, 1),
            "metrics": [
                {"label": v.label, "value": v.value, "interval": v.interval, "floor": v.floor}
                for v in values
            ],
            "report": report.to_dict(),
        }
        for v in values:
            print(f"{recipe:5s} {v.label}: {v.value:.3f} {v.interval} floor {v.floor}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2, default=str))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
