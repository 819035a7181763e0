"""Few-step solvers and CPU arithmetic for ddpm (issue 28): quality per sampler and step
count, sampling and training speed against diffusers, on one trained MNIST model.

Subcommands (each a separate run of well under 15 minutes on the 2-core machine; all use
the model ``train`` saved, so every figure comes from the same weights and seeds):

- ``train``: the default ddpm at ``--image-size`` (32 channels, class-conditional) on
  ``--dataset`` (digits at 16 px by default: guided sampling at scale 2, its default; or
  MNIST t10k at 28 px) for ``--train-seconds``, saved to ``--model``.
- ``quality``: the judge (``bench/quality.py``'s: the dataset classifier's label agreement
  and FD in its 128-d features against the test split). The reference is diffusers'
  ``DDIMPipeline`` at 50 steps (fp32, stock) on ``--ref-seeds`` seeds: its run-to-run
  spread is the band. Each of our (sampler, steps) settings, at the default precision,
  is scored on the first seed; one "passes" when its label agreement is at least the
  worst reference run's and its FD at most the worst reference run's. The fewest-step
  passing setting is printed as the default to pick, and scored once more in fp32.
- ``speed``: images/s, one thread, interleaved rounds, best of each: diffusers'
  ``DDIMPipeline`` 50 steps against ours at DDIM 50 fp32 eager (parity), then each CPU
  change on its own (bf16 autocast; channels_last; torch.compile), then the solver
  settings at the default precision, compiled and not. Compiling's one-off cost is
  printed beside it.
- ``train-speed``: training steps/s of the engine's loop (eager fp32: what CPU runs use)
  against the loop of diffusers' ``train_unconditional.py`` (``bench/train_throughput.py``'s
  ``plain_diffusers_rate``), and the engine's step with bf16 autocast, channels_last and
  torch.compile each on its own.

    python bench/solvers.py train                # digits 16 px, 300 s
    python bench/solvers.py quality
    python bench/solvers.py speed
    python bench/solvers.py train-speed

Raw output: bench/results/solvers-<subcommand>.json.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ddim_pipeline import diffusers_ddim  # noqa: E402
from gpu_support import compile_setting  # noqa: E402
from quality import fd  # noqa: E402

from models import datasets, engines  # noqa: E402
from models.engines import accel  # noqa: E402
from models.engines.base import Trained  # noqa: E402
from models.engines.runtime import devices  # noqa: E402
from models.metrics.features import dataset_classifier  # noqa: E402

RESULTS = Path(__file__).parent / "results"
OUT = Path(__file__).parent / "out"
engine = engines.get("ddpm")
SETTINGS: list[tuple[str, int]] = [
    ("ddim", 50),
    *[("dpm_solver_multistep", s) for s in (5, 8, 10, 15)],
    *[("unipc", s) for s in (5, 8, 10, 15)],
]


# --------------------------------------------------------------------------- helpers


def channels_last_copy(trained: Trained) -> Trained:
    unet = copy.deepcopy(trained.modules["unet"]).to(memory_format=torch.channels_last)
    return Trained(
        trained.engine, trained.config, trained.num_classes, trained.image_shape,
        trained.class_names, {"unet": unet}, trained.metrics, trained.privacy,
    )  # fmt: skip


def write(name: str, payload: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_has_bf16": accel.cpu_has_bf16(),
        **payload,
    }
    path = RESULTS / f"solvers-{name}.json"
    path.write_text(json.dumps(payload, indent=1))
    print(f"wrote {path}")


def print_table(table: dict[str, dict[str, Any]], width: int, row_format: str) -> None:
    """One line per run: its name, then its figures as ``row_format`` names them."""
    for name, row in table.items():
        print(f"  {name:{width}s} {row_format.format(**row)}", flush=True)


def load_data(args: argparse.Namespace, split: str) -> datasets.ImageDataset:
    root = args.root if args.dataset == "mnist_t10k" else None
    return datasets.load(args.dataset, split, args.image_size, root)


# --------------------------------------------------------------------------- train


def cmd_train(args: argparse.Namespace) -> None:
    data = load_data(args, "train")
    config = {
        "image_size": args.image_size, "seed": 0, "max_steps": 100_000,
        "max_seconds": args.train_seconds,
    }  # fmt: skip
    started = time.perf_counter()
    trained = engine.train(data, config)
    seconds = time.perf_counter() - started
    args.model.mkdir(parents=True, exist_ok=True)
    engine.save(trained, args.model)
    print(f"trained {trained.metrics['steps']:.0f} steps in {seconds:.0f} s → {args.model}")
    write(
        "train", {"steps": trained.metrics["steps"], "seconds": seconds, "config": trained.config}
    )


# --------------------------------------------------------------------------- quality


def cmd_quality(args: argparse.Namespace) -> None:
    trained = engine.load(args.model)
    train, test = load_data(args, "train"), load_data(args, "test")
    reference = dataset_classifier(train, test, OUT / "classifiers", seed=0)
    test_features = reference(test.images)
    labels = torch.arange(10).repeat_interleave(args.per_class)

    def judge(images: torch.Tensor) -> dict[str, float]:
        features, logits = reference.with_logits(images)
        return {
            "label_agreement": float((logits.argmax(1) == labels.numpy()).mean()),
            "fd": fd(features, test_features),
        }

    rows: list[dict[str, Any]] = []
    refs = []
    for seed in range(args.ref_seeds):
        started = time.perf_counter()
        images = diffusers_ddim(trained, labels, seed)
        row = {"who": "diffusers DDIMPipeline", "sampler": "ddim", "steps": 50,
               "precision": "fp32", "seed": seed, **judge(images),
               "seconds": time.perf_counter() - started}  # fmt: skip
        refs.append(row)
        print(row, flush=True)
    worst_la = min(r["label_agreement"] for r in refs)
    worst_fd = max(r["fd"] for r in refs)

    def ours(sampler: str, steps: int, precision: str) -> dict[str, Any]:
        started = time.perf_counter()
        images = engine.sample(
            trained, len(labels), labels=labels, seed=0, sampler=sampler, steps=steps,
            precision=precision, batch_size=256,
        )  # fmt: skip
        row = {"who": "ours", "sampler": sampler, "steps": steps, "precision": precision,
               "seed": 0, **judge(images), "seconds": time.perf_counter() - started}  # fmt: skip
        row["within_ddim50_spread"] = row["label_agreement"] >= worst_la and row["fd"] <= worst_fd
        print(row, flush=True)
        return row

    for sampler, steps in SETTINGS:
        rows.append(ours(sampler, steps, "auto"))
    passing = [r for r in rows if r["within_ddim50_spread"] and r["sampler"] != "ddim"]
    pick = min(passing, key=lambda r: (r["steps"], r["fd"])) if passing else None
    # fp32 DDIM 50 is the reference itself (ours equals DDIMPipeline within a grey level in
    # fp32, tests/unit/models/test_ddpm.py): only the pick is scored again in fp32.
    fp32 = [] if pick is None else [ours(pick["sampler"], pick["steps"], "fp32")]
    print(f"reference band: label agreement >= {worst_la:.3f}, FD <= {worst_fd:.2f}")
    print(f"fewest steps within the band: {pick}")
    write("quality", {
        "model": str(args.model), "per_class": args.per_class,
        "guidance_scale": trained.config["sample_guidance_scale"],
        "classifier_test_accuracy": reference.test_accuracy,
        "reference": refs, "band": {"label_agreement_min": worst_la, "fd_max": worst_fd},
        "ours": rows, "fp32": fp32, "pick": pick,
    })  # fmt: skip


# --------------------------------------------------------------------------- speed


def timed_rounds(
    runs: dict[str, Callable[[], Any]], rounds: int
) -> tuple[dict[str, float], dict[str, float]]:
    """Best seconds of each run over interleaved ``rounds`` (first call: warm-up, timed
    apart as its one-off cost, e.g. compiling)."""
    first: dict[str, float] = {}
    for name, run in runs.items():
        started = time.perf_counter()
        run()
        first[name] = time.perf_counter() - started
        print(f"  warm-up {name}: {first[name]:.1f} s", flush=True)
    best = {name: float("inf") for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            started = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - started)
    return best, first


def cmd_speed(args: argparse.Namespace) -> None:
    trained = engine.load(args.model)
    cl = channels_last_copy(trained)
    n = args.batch
    labels = torch.arange(n) % 10
    picked = [(s, int(k)) for s, k in (item.split(":") for item in args.solvers.split(","))]

    def ours(model: Trained, sampler: str, steps: int, precision: str, compiled: bool):
        def run() -> torch.Tensor:
            with compile_setting("on" if compiled else "off"):
                return engine.sample(
                    model, n, labels=labels, seed=0, sampler=sampler, steps=steps,
                    precision=precision, batch_size=n,
                )  # fmt: skip

        return run

    runs: dict[str, Callable[[], Any]] = {
        "diffusers DDIMPipeline 50 fp32": lambda: diffusers_ddim(trained, labels, 0),
        "ours ddim 50 fp32": ours(trained, "ddim", 50, "fp32", False),
    }
    if not args.solvers_only:
        runs.update({
            "ours ddim 50 bf16": ours(trained, "ddim", 50, "auto", False),
            "ours ddim 50 fp32 channels_last": ours(cl, "ddim", 50, "fp32", False),
            "ours ddim 50 fp32 compiled": ours(trained, "ddim", 50, "fp32", True),
            "ours ddim 50 bf16 compiled": ours(trained, "ddim", 50, "auto", True),
        })  # fmt: skip
    for sampler, steps in picked:
        runs[f"ours {sampler} {steps} bf16"] = ours(trained, sampler, steps, "auto", False)
        if not args.solvers_only:
            runs[f"ours {sampler} {steps} bf16 compiled"] = ours(
                trained, sampler, steps, "auto", True
            )
    best, first = timed_rounds(runs, args.rounds)
    base = "diffusers DDIMPipeline 50 fp32"
    table = {
        name: {
            "images_per_s": n / best[name],
            "ratio_vs_ddimpipeline50": best[base] / best[name],
            "first_call_s": first[name],
        }
        for name in runs
    }
    print(
        f"{n} images {trained.image_shape} per call, best of {args.rounds}, "
        f"{torch.get_num_threads()} thread(s)"
    )
    print_table(table, 40, "{images_per_s:8.2f} img/s  ratio {ratio_vs_ddimpipeline50:6.2f}  "
                "first call {first_call_s:6.1f} s")  # fmt: skip
    write(
        "speed-solvers" if args.solvers_only else "speed",
        {"model": str(args.model), "batch": n, "rounds": args.rounds, "runs": table},
    )


# --------------------------------------------------------------------------- train speed


def cmd_train_speed(args: argparse.Namespace) -> None:
    from train_throughput import plain_diffusers_rate

    data = load_data(args, "train")
    config = {"image_size": args.image_size, "seed": 0}
    warmup, steps = args.warmup, args.steps

    def engine_rate(patch: Callable[[], contextlib.AbstractContextManager[Any]]) -> float:
        stamps: list[float] = []

        def progress(step: int, total: int, **terms: Any) -> None:
            stamps.append(time.perf_counter())

        from models.engines.base import Hooks

        full = {**config, "max_steps": warmup + steps, "checkpoint_every": 0}
        with patch():
            engine.train(data, full, Hooks(progress=progress))
        return steps / (stamps[-1] - stamps[warmup - 1])

    @contextlib.contextmanager
    def patched(attr: str = "", value: Any = None, compile: str = "off") -> Iterator[None]:
        """One CPU change on its own: ``devices.<attr>`` replaced by ``value`` (none: the
        engine as it is) and torch.compile ``compile``, while the engine trains."""
        original = getattr(devices, attr) if attr else None
        if attr:
            setattr(devices, attr, value)
        try:
            with compile_setting(compile):
                yield
        finally:
            if attr:
                setattr(devices, attr, original)

    def bf16(device: torch.device) -> Any:
        return torch.autocast(device.type, dtype=torch.bfloat16)

    def channels_last(x: torch.Tensor, device: torch.device) -> torch.Tensor:
        return x.to(memory_format=torch.channels_last)

    variants: dict[str, Callable[[], contextlib.AbstractContextManager[Any]]] = {
        "ours (fp32 eager)": lambda: patched(),
        "ours bf16": lambda: patched("autocast", bf16),
        "ours channels_last": lambda: patched("channels_last", channels_last),
    }
    if args.compile:
        variants["ours compiled"] = lambda: patched(compile="on")
    rates: dict[str, list[float]] = {name: [] for name in [*variants, "diffusers example loop"]}
    for _ in range(args.rounds):
        for name, patch in variants.items():
            rates[name].append(engine_rate(patch))
            print(f"  {name}: {rates[name][-1]:.2f} steps/s", flush=True)
        rates["diffusers example loop"].append(plain_diffusers_rate(data, config, warmup, steps))
        print(f"  diffusers example loop: {rates['diffusers example loop'][-1]:.2f} steps/s")
    base = max(rates["diffusers example loop"])
    table = {
        name: {"steps_per_s": max(r), "all": r, "ratio_vs_diffusers": max(r) / base}
        for name, r in rates.items()
    }
    print_table(table, 28, "{steps_per_s:6.2f} steps/s  ratio {ratio_vs_diffusers:.2f}")
    write("train-speed", {"warmup": warmup, "steps": steps, "rounds": args.rounds, "runs": table})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["train", "quality", "speed", "train-speed"])
    parser.add_argument("--dataset", default="digits", choices=["digits", "mnist_t10k"])
    parser.add_argument("--image-size", type=int, default=16)
    parser.add_argument("--root", default="/work/shared/data/mnist-t10k", help="mnist_t10k's")
    parser.add_argument(
        "--model", type=Path, default=None, help="default: bench/out/solvers-DATASET-SIZE"
    )
    parser.add_argument("--train-seconds", type=float, default=300)
    parser.add_argument("--per-class", type=int, default=50)
    parser.add_argument("--ref-seeds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--solvers", default="dpm_solver_multistep:10,unipc:10")
    parser.add_argument(
        "--solvers-only", action="store_true",
        help="speed: only DDIMPipeline, ours DDIM 50 fp32 and the --solvers, eager",
    )  # fmt: skip
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--compile", action="store_true", help="train-speed: also compiled")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    args.model = args.model or OUT / f"solvers-{args.dataset}-{args.image_size}"
    torch.set_num_threads(args.threads)
    {"train": cmd_train, "quality": cmd_quality, "speed": cmd_speed,
     "train-speed": cmd_train_speed}[args.command](args)  # fmt: skip


if __name__ == "__main__":
    main()
