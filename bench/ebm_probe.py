"""How ebm's sample quality moves over one training run: scored every ``--every`` steps.

bench/quality.py scores a model once, at the end of its budget; an energy model trained by
contrastive divergence can be good at 900 steps and bad at 5,000 (BENCHMARKS.md, "ebm at
28 px"). This trains one run and, every ``--every`` steps, draws ``--per-class`` samples
of each class from noise with the sampler's defaults and scores them with the dataset's
reference classifier (label agreement, FD in its feature space), beside the same scores
for chains of the replay buffer (what training sees as negatives):

    python bench/ebm_probe.py --root /work/shared/data/mnist-t10k --steps 3000 \
        --set lr=1e-4 --out bench/out/ebm-probe-lr1e-4.json

One JSON row per scoring, rewritten after each, so a run cut short keeps its curve; beside
it, each scoring's samples (``.<step>.npy``) and the energy's weights (``.<step>.pt``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: bench.*

from bench.quality import fd  # noqa: E402
from models import datasets  # noqa: E402
from models.engines import ebm  # noqa: E402
from models.engines.base import Trained  # noqa: E402
from models.engines.runtime import config as configs  # noqa: E402
from models.engines.runtime import devices  # noqa: E402
from models.metrics.features import dataset_classifier  # noqa: E402

OUT = Path(__file__).parent / "out"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="mnist_t10k")
    parser.add_argument("--root", default=None)
    parser.add_argument("--image-size", type=int, default=28)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--every", type=int, default=500)
    parser.add_argument("--per-class", type=int, default=20)
    parser.add_argument("--sample-steps", type=int, default=None, help="default: the config's")
    parser.add_argument("--set", action="append", default=[], help="option=JSON value")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=OUT / "ebm-probe.json")
    parser.add_argument("--classifiers", type=Path, default=OUT / "classifiers")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.out.parent.mkdir(parents=True, exist_ok=True)

    train = datasets.load(args.dataset, "train", args.image_size, args.root)
    test = datasets.load(args.dataset, "test", args.image_size, args.root)
    reference = dataset_classifier(train, test, args.classifiers, seed=args.seed)
    test_features = reference(test.images)

    values = {k: json.loads(v) for k, _, v in (s.partition("=") for s in args.set)}
    values = {**values, "seed": args.seed, "image_size": args.image_size}
    values["max_steps"] = args.steps
    cfg = ebm.ENGINE.resolve(configs.make_config(ebm.EBMConfig, values, engine="ebm"), None)
    run = ebm._Run(
        cfg, train, datasets.resize(train.images, args.image_size), devices.pick_device()
    )
    labels = torch.arange(train.num_classes).repeat_interleave(args.per_class)
    n = len(labels)
    rows: list[dict[str, object]] = []
    started = time.monotonic()
    while run.step < args.steps:
        terms = run.train_step()
        if run.step % args.every:
            continue
        trained = Trained(
            engine="ebm",
            config=dataclasses.asdict(cfg),
            num_classes=train.num_classes,
            image_shape=(train.image_shape[0], args.image_size, args.image_size),
            class_names=list(train.class_names),
            modules=ebm.ENGINE.trained_modules(run),  # what a trained model samples
            metrics={},
        )
        opts = {} if args.sample_steps is None else {"steps": args.sample_steps}
        samples = ebm.ENGINE.sample(trained, n, labels, seed=args.seed, **opts)
        features, logits = reference.with_logits(samples)
        # Chains of the buffer (its slots are drawn at random, so any n of them will do),
        # with the labels they were run under.
        chains = ebm.pixels.to_uint8(run.buffer[-n:].cpu())
        chain_labels = run.buffer_labels[-n:].cpu()
        chain_features, chain_logits = reference.with_logits(chains)
        row = {
            "step": run.step,
            "seconds": round(time.monotonic() - started),
            "label_agreement": float((logits.argmax(1) == labels.numpy()).mean()),
            "fd": fd(features, test_features),
            "buffer_label_agreement": float(
                (chain_logits.argmax(1) == chain_labels.numpy()).mean()
            ),
            "buffer_fd": fd(chain_features, test_features),
            **{k: float(f"{v:.4g}") for k, v in terms.items()},
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
        args.out.write_text(json.dumps({"config": values, "rows": rows}, indent=1))
        np.save(args.out.with_suffix(f".{run.step}.npy"), samples.numpy())
        # The energy's weights, to score other sampler settings later without retraining.
        torch.save(trained.modules["energy"].state_dict(), args.out.with_suffix(f".{run.step}.pt"))


if __name__ == "__main__":
    main()
