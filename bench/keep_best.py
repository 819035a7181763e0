"""Keep-best (issue 29): what held-out scoring costs per engine, and what it keeps.

    python bench/keep_best.py cost  --out bench/results/keep_best_cost.json
    python bench/keep_best.py ebm   --steps 1500 --out bench/results/keep_best_ebm28.json
    python bench/keep_best.py ddpm  --steps 1000 --out bench/results/keep_best_ddpm28.json
    python bench/keep_best.py shapes --engine gan --max-seconds 1800 --out ...

``cost``: seconds per training step and per evaluation (drawing the sample and scoring it)
of each engine at its defaults, measured in one process; the ratio says how many steps
apart evaluations must be for scoring to cost a tenth of training.
``ebm``: ebm at 28 px on mnist_t10k with only the dataset (and the step count) set,
scored as a train job is: every evaluation, the one kept, the last; then the kept weights
(what the version registers) measured again on a fresh sample (300 images, seed 1) against
the test split.
``ddpm``: the same at 28 px for ddpm, and the guidance the scoring chose against the
fixed default, both on that fresh sample.
``shapes``: one engine on shapes at 32 px RGB (``--image-size``; 16 is what a shapes job
with only ``dataset`` set trains at) with keep-best, its kept score; ``--max-seconds`` is
the CPU budget (the engine's ``max_seconds``), ``--steps 0`` its default run length.

The data are the mnist t10k files in ``--data`` (../shared/data/mnist-t10k); every run
uses the worker's scorer (models/metrics/heldout.py) in the dataset classifier's features.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models import datasets, engines
from models.engines.base import Hooks, Scoring, Trained
from models.metrics.evaluate import REFERENCE_CLASSIFIER_SEED
from models.metrics.features import ClassifierFeatures, dataset_classifier
from models.metrics.frechet import frechet_distance
from models.metrics.heldout import HeldOutScore, sample_count

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist-t10k"


def load(name: str, split: str, size: int, root: Path) -> datasets.ImageDataset:
    return datasets.load(name, split=split, image_size=size, root=str(root))


def classifier(name: str, size: int, root: Path, cache: Path) -> ClassifierFeatures:
    return dataset_classifier(
        load(name, "train", size, root),
        load(name, "test", size, root),
        cache,
        seed=REFERENCE_CLASSIFIER_SEED,
    )


def scoring(extractor: ClassifierFeatures, size: int) -> Scoring:
    return Scoring(make_scorer=lambda held: HeldOutScore(extractor, held, sample_count(size)))


def fresh_score(
    engine: Any,
    trained: Trained,
    extractor: ClassifierFeatures,
    test: datasets.ImageDataset,
    **opts: Any,
) -> dict[str, float]:
    """Label agreement and FD of 300 new images (seed 1) against the test split."""
    n = 300
    labels = torch.arange(n) % trained.num_classes if trained.config["conditional"] else None
    images = engine.sample(trained, n, labels, seed=1, **opts)
    feats, logits = extractor.with_logits(images)
    real = extractor(test.images)
    fd = frechet_distance(
        feats.mean(0), np.cov(feats, rowvar=False), real.mean(0), np.cov(real, rowvar=False)
    )
    out = {"fd_vs_test": round(float(fd), 3)}
    if labels is not None:
        out["label_agreement"] = round(float((logits.argmax(1) == labels.numpy()).mean()), 4)
    return out


def train(
    engine_name: str, data: datasets.ImageDataset, config: dict[str, Any], score: Scoring
) -> tuple[Trained, float, list[float]]:
    engine = engines.get(engine_name)
    stamps: list[float] = []
    started = time.monotonic()

    def tick(step: int, total: int) -> None:
        stamps.append(time.monotonic())
        if step % 100 == 0:  # a heartbeat, so a long run shows its pace
            print(
                json.dumps({"step": step, "of": total, "seconds": round(stamps[-1] - started, 1)}),
                flush=True,
            )

    hooks = Hooks(
        progress=lambda step, total, **m: tick(step, total),
        scoring=score,
        # Each evaluation as it comes, so a run cut short still says what it saw.
        evaluated=lambda step, scores: print(
            json.dumps({"evaluation": scores, "seconds": round(time.monotonic() - started, 1)}),
            flush=True,
        ),
    )
    trained = engine.train(data, config, hooks)
    return trained, time.monotonic() - started, stamps


def cost(args: argparse.Namespace) -> dict[str, Any]:
    """Seconds per step and per evaluation, each engine at its defaults, sizes 16/28/32."""
    rows = []
    cache = Path(tempfile.mkdtemp())
    for name, size in (("digits", 16), ("mnist_t10k", 28), ("shapes", 32)):
        extractor = classifier(name, size, args.data, cache)
        data = load(name, "train", size, args.data)
        for engine_name in ("gan", "ebm", "ddpm"):
            steps = args.steps
            config = {"max_steps": steps, "eval_every": steps, "checkpoint_every": 0}
            if engine_name == "ddpm":
                config["sample_guidance_scale"] = 1.0  # one evaluation, no guidance sweep
            trained, _, stamps = train(engine_name, data, config, scoring(extractor, size))
            gaps = np.diff(stamps[:-1])  # the last step's gap holds the evaluation
            step_s = float(np.median(gaps[len(gaps) // 4 :]))
            eval_s = float(trained.selection["scoring_seconds"])
            row = {
                "engine": engine_name,
                "dataset": name,
                "image_size": size,
                "generated": sample_count(size),
                "seconds_per_step": round(step_s, 4),
                "seconds_per_evaluation": round(eval_s, 2),
                "steps_for_a_tenth": int(np.ceil(10 * eval_s / step_s)),
            }
            print(json.dumps(row), flush=True)
            rows.append(row)
    return {"rows": rows}


def run_28(args: argparse.Namespace, engine_name: str) -> dict[str, Any]:
    size = 28
    cache = Path(tempfile.mkdtemp())
    extractor = classifier("mnist_t10k", size, args.data, cache)
    data = load("mnist_t10k", "train", size, args.data)
    test = load("mnist_t10k", "test", size, args.data)
    engine = engines.get(engine_name)
    config: dict[str, Any] = {"max_steps": args.steps}
    if args.eval_every:
        config["eval_every"] = args.eval_every
    trained, seconds, _ = train(engine_name, data, config, scoring(extractor, size))
    report = trained.selection
    assert report is not None
    print(json.dumps({"selection": report}), flush=True)  # before the slow fresh samples
    out: dict[str, Any] = {
        "engine": engine_name,
        "config": config,
        "resolved": {k: trained.config[k] for k in ("eval_every", "keep", "max_steps")},
        "train_seconds_total": round(seconds, 1),
        "selection": report,
        "kept_fresh": fresh_score(engine, trained, extractor, test),
    }
    agreements = [e["label_agreement"] for e in report["evaluations"]]
    out["best_agreement_in_run"] = max(agreements)
    out["kept_agreement"] = report["chosen"]["label_agreement"]
    out["last_agreement"] = report["last"]["label_agreement"]
    if engine_name == "ddpm":
        default = engine.default_config(image_size=size)["sample_guidance_scale"]
        out["guidance_default"] = default
        out["guidance_chosen"] = trained.config["sample_guidance_scale"]
        out["fresh_at_default_guidance"] = fresh_score(
            engine, trained, extractor, test, guidance_scale=default
        )
    print(json.dumps(out, indent=1), flush=True)
    return out


def shapes(args: argparse.Namespace) -> dict[str, Any]:
    size = args.image_size
    cache = Path(tempfile.mkdtemp())
    extractor = classifier("shapes", size, args.data, cache)
    data = load("shapes", "train", size, args.data)
    test = load("shapes", "test", size, args.data)
    engine = engines.get(args.engine)
    # Only the budget: the defaults are what the claim is about. The data are drawn at
    # ``size`` and the config names none, as a job with `image_size` set (16 px: a job with
    # only `dataset` set, the size shapes jobs default to).
    config: dict[str, Any] = {}
    if args.steps:
        config["max_steps"] = args.steps
    if args.max_seconds:
        config["max_seconds"] = args.max_seconds
    if args.eval_every:
        config["eval_every"] = args.eval_every
    for item in args.set:  # options beyond the defaults: which ones get further
        name, _, value = item.partition("=")
        config[name] = json.loads(value)
    trained, seconds, _ = train(args.engine, data, config, scoring(extractor, size))
    out = {
        "engine": args.engine,
        "config": config,
        "resolved": {k: trained.config[k] for k in ("eval_every", "keep", "max_steps")},
        "steps_trained": trained.selection["last_step"] if trained.selection else None,
        "train_seconds_total": round(seconds, 1),
        "selection": trained.selection,
        "kept_fresh": fresh_score(engine, trained, extractor, test),
    }
    print(json.dumps(out, indent=1), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=("cost", "ebm", "ddpm", "shapes"))
    parser.add_argument("--steps", type=int, default=40, help="0: the default (shapes)")
    parser.add_argument("--image-size", type=int, default=32, help="shapes: 32 or 16")
    parser.add_argument("--set", action="append", default=[], help="shapes: option=JSON")
    parser.add_argument("--max-seconds", type=float, default=0, help="shapes: 0, no budget")
    parser.add_argument("--eval-every", type=int, default=0, help="0: the default")
    parser.add_argument("--engine", default="gan")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.monotonic()
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    if args.what == "cost":
        result = cost(args)
    elif args.what == "shapes":
        result = shapes(args)
    else:
        result = run_28(args, args.what)
    result["machine"] = {
        "cpu": platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        # What else the machine ran: absolute seconds are only comparable at similar load.
        "load_average_at_start": load_at_start,
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "wall_seconds": round(time.monotonic() - started, 1),
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
