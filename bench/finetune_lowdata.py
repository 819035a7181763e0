"""Low-data study: does fine-tuning a pretrained DDPM beat training one from scratch on 5
real images per class?

MNIST t10k (all 10,000 images) is split, stratified, into halves A and B. A DDPM is
pretrained on half A (all ten classes). Then, per seed: draw 5 images per class from
half B; fine-tune the pretrained model on those 50 images (``init_from``), and train one
from scratch on the same 50 images with the same steps; sample 100 per class from each;
train the same small CNN on each synthetic set (TSTR) and on the real 50 with and
without it; score everything on the rest of half B (4,950 images no model saw). The
pretrained model's own TSTR is the reference of what half A alone gives.

    python bench/finetune_lowdata.py                       # 16 px, the figures in BENCHMARKS
    python bench/finetune_lowdata.py --pretrain-steps 200 --finetune-steps 50   # a smoke run

Writes bench/out/finetune-lowdata.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models import datasets, engines  # noqa: E402
from models.datasets import ImageDataset, _stratified_split  # noqa: E402
from models.engines.base import Hooks  # noqa: E402
from models.metrics import classifier as classifiers  # noqa: E402
from models.metrics.utility import per_class_subset  # noqa: E402

OUT = Path(__file__).parent / "out"
ROOT = "/work/shared/data/mnist-t10k"


def halves(size: int) -> tuple[ImageDataset, ImageDataset]:
    parts = [datasets.load("mnist_t10k", s, image_size=size, root=ROOT) for s in ("train", "test")]
    images = torch.cat([p.images for p in parts])
    labels = torch.cat([p.labels for p in parts])
    a = torch.from_numpy(_stratified_split(labels.numpy(), "train", train_fraction=0.5, seed=0))
    b = torch.from_numpy(_stratified_split(labels.numpy(), "test", train_fraction=0.5, seed=0))
    names = parts[0].class_names
    return (
        ImageDataset("mnist_t10k-A", "train", images[a], labels[a], 10, names),
        ImageDataset("mnist_t10k-B", "train", images[b], labels[b], 10, names),
    )


def subset(data: ImageDataset, index: torch.Tensor, name: str) -> ImageDataset:
    return ImageDataset(name, "train", data.images[index], data.labels[index], 10, data.class_names)


def accuracy(images, labels, test: ImageDataset, seed: int, cfg) -> float:
    model = classifiers.train_classifier(
        lambda: classifiers.build(cfg, images.shape[1], 10), images, labels, cfg, seed
    )
    return classifiers.accuracy(model, test.images, test.labels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--image-size", type=int, default=16)
    parser.add_argument("--pretrain-steps", type=int, default=1500)
    parser.add_argument("--finetune-steps", type=int, default=300)
    parser.add_argument("--per-class", type=int, default=5)
    parser.add_argument("--synthetic-per-class", type=int, default=100)
    parser.add_argument("--ddim-steps", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    OUT.mkdir(parents=True, exist_ok=True)
    seeds = [int(s) for s in args.seeds.split(",")]
    cfg = classifiers.ClassifierConfig()
    engine = engines.get("ddpm")
    half_a, half_b = halves(args.image_size)
    wanted = torch.arange(10).repeat_interleave(args.synthetic_per_class)

    started = time.monotonic()
    pretrained = engine.train(half_a, {"max_steps": args.pretrain_steps, "seed": 0})
    pretrain_s = time.monotonic() - started
    parent = Path(tempfile.mkdtemp(prefix="pretrained-"))
    engine.save(pretrained, parent)
    print(f"pretrained on {len(half_a)} images of half A in {pretrain_s:.0f} s")

    rows = []
    for seed in seeds:
        chosen = per_class_subset(half_b.labels, args.per_class, seed)
        few = subset(half_b, chosen, "mnist_t10k-B-few")
        rest = torch.from_numpy(np.setdiff1d(np.arange(len(half_b)), chosen.numpy()))
        test = subset(half_b, rest, "mnist_t10k-B-rest")
        run = {"max_steps": args.finetune_steps, "seed": seed}
        timings, synthetic = {}, {}
        for name, hooks in (("finetuned", Hooks(init_from=parent)), ("scratch", None)):
            t0 = time.monotonic()
            trained = engine.train(few, run, hooks)
            timings[name] = time.monotonic() - t0
            synthetic[name] = engine.sample(
                trained, wanted.numel(), labels=wanted, seed=seed, steps=args.ddim_steps
            )
        synthetic["pretrained"] = engine.sample(
            pretrained, wanted.numel(), labels=wanted, seed=seed, steps=args.ddim_steps
        )
        row = {"seed": seed, "train_seconds": timings}
        row["real"] = accuracy(few.images, few.labels, test, seed, cfg)
        for name, images in synthetic.items():
            row[f"tstr {name}"] = accuracy(images, wanted, test, seed, cfg)
            both = torch.cat([few.images, images]), torch.cat([few.labels, wanted])
            row[f"real+{name}"] = accuracy(*both, test, seed, cfg)
        row["gain tstr"] = row["tstr finetuned"] - row["tstr scratch"]
        row["gain real+"] = row["real+finetuned"] - row["real+scratch"]
        rows.append(row)
        print(json.dumps(row))

    keys = [k for k in rows[0] if k not in ("seed", "train_seconds")]
    summary = {k: (float(np.mean([r[k] for r in rows])), float(np.std([r[k] for r in rows])))
               for k in keys}  # fmt: skip
    print(f"\n{args.image_size} px, {args.per_class}/class of half B, test: {len(test)} images")
    for key, (mean, std) in summary.items():
        unit = "points" if key.startswith("gain") else "%"
        print(f"  {key:22s} {mean * 100:7.2f} ± {std * 100:5.2f} {unit}")
    (OUT / "finetune-lowdata.json").write_text(
        json.dumps(
            {
                "args": vars(args),
                "pretrain_seconds": pretrain_s,
                "pretrain_images": len(half_a),
                "test_images": len(test),
                "per_seed": rows,
                "summary": summary,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
