"""A training job's speed alone and beside a busy process: torch's default CPU threads
against the ones a worker chooses (worker/threads.py).

Each measurement is a fresh process training the ddpm engine (``--steps`` timed steps
after ``--warmup``, timed between ``hooks.progress`` calls), with torch's threads left at
its default (one per core) or set to the worker's choice for the embedded stack's job
worker (``worker_reserved_cores`` 1: it shares the machine with the preview worker). The
busy neighbour is one process spinning on a core, as a preview, an evaluate job or any
other program would. The four cases run in alternating rounds in the same run, and the
best of each is kept, so a change in machine load hits all alike.

    python bench/threads.py                      # digits 16 px, 3 rounds
    python bench/threads.py --json bench/results/threads.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPIN = "while True: pass"


def child(args: argparse.Namespace) -> None:
    """Train and print steps/s as JSON (run in a fresh process per measurement)."""
    import torch

    from models import datasets, engines
    from models.engines.base import Hooks

    if args.threads:
        torch.set_num_threads(args.threads)
    data = datasets.load("digits", "train", args.image_size)
    stamps: list[float] = []
    hooks = Hooks(progress=lambda step, total, **_: stamps.append(time.perf_counter()))
    config = {
        "image_size": args.image_size,
        "max_steps": args.warmup + args.steps,
        "checkpoint_every": 0,
    }
    engines.get("ddpm").train(data, config, hooks)
    rate = args.steps / (stamps[-1] - stamps[args.warmup - 1])
    print(json.dumps({"steps_s": rate, "threads": torch.get_num_threads()}))


def measure(args: argparse.Namespace, threads: int, busy: bool) -> dict[str, float]:
    command = [
        sys.executable, __file__, "--child", "--threads", str(threads),
        "--steps", str(args.steps), "--warmup", str(args.warmup),
        "--image-size", str(args.image_size),
    ]  # fmt: skip
    spinner = subprocess.Popen([sys.executable, "-c", SPIN]) if busy else None  # noqa: S603
    try:
        out = subprocess.run(  # noqa: S603 - this very script
            command, check=True, capture_output=True, text=True, cwd=ROOT
        ).stdout
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--image-size", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    sys.path.insert(0, str(ROOT))
    from worker.threads import affinity_cores, cgroup_quota, choose_threads

    cores = affinity_cores()
    chosen = choose_threads(cores=cores, concurrency=1, quota=cgroup_quota(), reserved=1)
    cases = {
        ("default", False): 0,
        ("default", True): 0,
        ("chosen", False): chosen.intra_op,
        ("chosen", True): chosen.intra_op,
    }
    best: dict[tuple[str, bool], dict[str, float]] = {}
    for _ in range(args.rounds):
        for (name, busy), threads in cases.items():
            result = measure(args, threads, busy)
            if result["steps_s"] > best.get((name, busy), {"steps_s": 0.0})["steps_s"]:
                best[(name, busy)] = result
    print(f"ddpm on digits {args.image_size} px, {cores} cores, best of {args.rounds} rounds")
    for (name, busy), result in best.items():
        where = "beside a busy process" if busy else "alone"
        print(
            f"  {name:7s} ({int(result['threads'])} threads) {where:22s} "
            f"{result['steps_s']:6.2f} steps/s"
        )
    ratios = {
        "default_busy_over_alone": best[("default", True)]["steps_s"]
        / best[("default", False)]["steps_s"],
        "chosen_busy_over_alone": best[("chosen", True)]["steps_s"]
        / best[("chosen", False)]["steps_s"],
        "chosen_over_default_busy": best[("chosen", True)]["steps_s"]
        / best[("default", True)]["steps_s"],
        "chosen_over_default_alone": best[("chosen", False)]["steps_s"]
        / best[("default", False)]["steps_s"],
    }
    for key, value in ratios.items():
        print(f"  {key:28s} {value:.2f}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "cores": cores,
                    "rates": {f"{n}-{'busy' if b else 'alone'}": r for (n, b), r in best.items()},
                    "ratios": ratios,
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
