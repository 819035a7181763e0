"""Peak memory of a generate job run through the real worker path, against the product
requirement "peak RSS while generating 60,000 16x16 images < 2 GB", shards streamed to storage.

1. A tiny class-conditional DDPM is trained on ``digits`` at 16x16 in a child process
   (so training's own peak is not this process's high-water mark) and saved.
2. An embedded stack without servers in a temporary directory: a SQLite database
   migrated to head, a local-directory store, a tenant with a key, the model's files
   uploaded and registered as a model version.
3. A generate job row is created by ``core.jobs.submission.create_job`` and run in this
   process by ``worker.runner.run_job``: the model is downloaded and loaded, sampled shard
   by shard, each shard handed to the format's writer, the artifacts recorded.
4. Printed: RSS before the job (current and high-water mark), the high-water mark after
   it and the difference, images/s, wall time, and what was written to storage.

``ru_maxrss`` is a process high-water mark, so run one format per process:

    .venv/bin/python bench/generate_memory.py                          # 60,000 images, npz
    .venv/bin/python bench/generate_memory.py --format imagefolder
    .venv/bin/python bench/generate_memory.py --count 2000             # a quick check

``--model DIR`` generates from a saved model instead of the tiny one (e.g. the 28 px MNIST
model of bench/solvers.py) and ``--config JSON`` sends that sample config instead of DDIM
at ``--steps``: the wall time of a generate job through the service, before and after a
sampler change (issue 28).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import shutil
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core import migrate  # noqa: E402
from core.config import Settings  # noqa: E402
from core.db import session_scope  # noqa: E402
from core.jobs import submission  # noqa: E402
from core.jobs.orm import Job  # noqa: E402
from core.jobs.schemas import GenerateJobIn  # noqa: E402
from core.model_versions import service as model_versions  # noqa: E402
from core.storage import from_settings  # noqa: E402
from core.tenants import service as tenants  # noqa: E402
from models import datasets, engines  # noqa: E402
from worker import generate  # noqa: E402, F401 - loaded before the baseline, as in a warm worker
from worker.runner import run_job  # noqa: E402

REQUIREMENT_MIB = 2048
TRAIN_CONFIG = {
    "max_steps": 20,
    "batch_size": 64,
    "image_size": 16,
    "base_channels": 16,
    "layers_per_block": 1,
    "warmup_steps": 0,
    "lr": 1e-3,
    "checkpoint_every": 0,
    "seed": 0,
}


def peak_rss_mib() -> float:
    """This process's high-water mark (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mib() -> float:
    """Resident memory now, from /proc (Linux); the high-water mark elsewhere."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return peak_rss_mib()


class RssSampler:
    """Samples the current RSS from a thread, to tell a spike from steady growth."""

    def __init__(self, interval_s: float = 0.5) -> None:
        self.interval_s = interval_s
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._started = time.perf_counter()

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.samples.append((time.perf_counter() - self._started, current_rss_mib()))

    def highest(self) -> tuple[float, float]:
        """(the highest sampled RSS, the fraction of the sampled time it came at)."""
        if not self.samples:
            return current_rss_mib(), 1.0
        when, rss = max(self.samples, key=lambda sample: sample[1])
        return rss, when / self.samples[-1][0]

    def at_fractions(self, fractions: tuple[float, ...]) -> list[float]:
        """Current RSS at these fractions of the sampled time."""
        if not self.samples:
            return []
        last = len(self.samples) - 1
        return [self.samples[min(int(f * len(self.samples)), last)][1] for f in fractions]


def train_and_save(directory: str) -> None:
    """Child process: train the tiny DDPM and write model.safetensors + config.json."""
    data = datasets.load("digits", split="train", image_size=16)
    engine = engines.get("ddpm")
    trained = engine.train(data, TRAIN_CONFIG)
    engine.save(trained, Path(directory))
    Path(directory, "train_examples").write_text(str(len(data)))


def train_examples(model_dir: Path) -> int:
    marker = model_dir / "train_examples"
    return int(marker.read_text()) if marker.exists() else 0


def setup_stack(
    root: Path, model_dir: Path, count: int, fmt: str, sample_config: dict[str, object]
) -> tuple[Settings, str]:
    """Migrated SQLite + local store + tenant + registered model + a queued generate job."""
    settings = Settings(
        database_url=f"sqlite:///{root}/db.sqlite",
        storage_url=f"file://{root}/store",
        work_dir=root / "work",
        shard_size=1000,
    )
    migrate.upgrade(settings.database_url)
    storage = from_settings(settings)
    for path in sorted(model_dir.glob("*.*")):
        storage.put_file(f"models/mem/{path.name}", path)
    trained = engines.get("ddpm").load(model_dir)
    job_in = GenerateJobIn.model_validate(
        {
            "kind": "generate",
            "model": "mem",
            "count": count,
            "config": sample_config,
            "output_format": fmt,
        }
    )
    with session_scope(settings.database_url) as session:
        tenants.create_key(session=session, tenant_name="bench")
        tenant = tenants.get_or_create_tenant(session=session, name="bench")
        model_versions.register(
            session=session,
            tenant_id=tenant.id,
            name="mem",
            engine="ddpm",
            dataset="digits:train",
            config=trained.config,
            spec={
                "num_classes": trained.num_classes,
                "class_names": trained.class_names,
                "image_shape": list(trained.image_shape),
                "conditional": True,
                "train_examples": train_examples(model_dir),
            },
            metrics={},
            checkpoint_uri="models/mem/",
            train_job_id=None,
        )
        job = submission.create_job(
            session=session, settings=settings, tenant=tenant, job_in=job_in
        )
        job_id = job.id
    return settings, job_id


def written(root: Path, job_id: str) -> tuple[int, int]:
    """(files, bytes) the job left in storage."""
    files = [p for p in (root / "store" / "jobs" / job_id).rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def check_output(root: Path, job_id: str, fmt: str, count: int) -> str:
    """A one-line check that the artifact holds ``count`` images (run after the peak)."""
    prefix = root / "store" / "jobs" / job_id
    if fmt == "npz":
        with np.load(prefix / "images.npz") as npz:
            shape, labels = npz["images"].shape, npz["labels"]
            classes = np.bincount(labels).tolist()
            return f"images.npz: images {shape}, labels {labels.shape}, per class {classes}"
    if fmt == "imagefolder":
        with zipfile.ZipFile(prefix / "images.zip") as archive:
            return f"images.zip: {len(archive.namelist())} members (expected {count})"
    return f"images/: {len(list((prefix / 'images').iterdir()))} png files (expected {count})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=60_000, help="images to generate")
    parser.add_argument("--format", choices=("npz", "png", "imagefolder"), default="npz")
    parser.add_argument("--steps", type=int, default=4, help="DDIM steps (memory, not quality)")
    parser.add_argument(
        "--guidance-scale",
        type=float,
        default=None,
        help="the engine's default (2.0) when left out; 1.0 halves the work (no guidance)",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--model", type=Path, default=None, help="a saved ddpm model directory")
    parser.add_argument(
        "--config", type=json.loads, default=None, help="the sample config (JSON) to send"
    )
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="bench-generate-memory-"))
    model_dir = root / "model"
    if args.model is not None:
        shutil.copytree(args.model, model_dir)
    else:
        start = time.perf_counter()
        spawn = multiprocessing.get_context("spawn")
        child = spawn.Process(target=train_and_save, args=(str(model_dir),))
        child.start()
        child.join()
        if child.exitcode != 0:
            sys.exit(f"training the tiny model failed (exit code {child.exitcode})")
        seconds = time.perf_counter() - start
        print(f"trained a tiny ddpm on digits 16x16 in {seconds:.1f} s (child process)")

    if args.threads:
        torch.set_num_threads(args.threads)
    sample_config: dict[str, object] = {"sampler": "ddim", "steps": args.steps}
    if args.guidance_scale is not None:
        sample_config["guidance_scale"] = args.guidance_scale
    if args.config is not None:
        sample_config = args.config
    settings, job_id = setup_stack(root, model_dir, args.count, args.format, sample_config)

    rss_before, peak_before = current_rss_mib(), peak_rss_mib()
    start = time.perf_counter()
    with RssSampler() as sampler:
        status = run_job(job_id, settings=settings)
    seconds = time.perf_counter() - start
    peak_after, rss_end = peak_rss_mib(), current_rss_mib()

    with session_scope(settings.database_url) as session:
        job = session.get(Job, job_id)
        assert job is not None
        job_status, error, result = str(job.status), job.error, job.result
    if status != "succeeded" or job_status != "succeeded":
        sys.exit(f"the generate job ended {job_status}: {error}")
    assert result is not None, "a succeeded job has a result"
    files, size = written(root, job_id)
    quartiles = ", ".join(f"{v:.0f}" for v in sampler.at_fractions((0.25, 0.5, 0.75, 1.0)))

    print(
        f"generate job through worker.runner.run_job: {args.count} images "
        f"{'x'.join(str(v) for v in result['image_shape'])}, format {args.format}, "
        f"sample config {sample_config}, shard_size {settings.shard_size}, "
        f"{torch.get_num_threads()} torch threads"
    )
    print(f"  RSS before the job (current)      {rss_before:9.1f} MiB")
    print(f"  peak RSS before the job           {peak_before:9.1f} MiB")
    print(f"  peak RSS after the job            {peak_after:9.1f} MiB")
    print(f"  delta (peak after - RSS before)   {peak_after - rss_before:9.1f} MiB")
    print(f"  RSS at 25/50/75/100% of the job   {quartiles} MiB")
    highest, when = sampler.highest()
    print(f"  highest sampled RSS               {highest:9.1f} MiB at {when:.0%} of the job")
    print(f"  RSS after the job (current)       {rss_end:9.1f} MiB")
    verdict = "meets" if peak_after < REQUIREMENT_MIB else "MISSES"
    ratio = peak_after / REQUIREMENT_MIB
    print(f"  requirement: peak < {REQUIREMENT_MIB} MiB      {verdict} it ({ratio:.2f} of it)")
    print(f"  wall time                         {seconds:9.1f} s")
    print(f"  images/s                          {args.count / seconds:9.1f}")
    print(f"  written to storage                {size / 2**20:9.1f} MiB in {files} files")
    print(f"  {check_output(root, job_id, args.format, args.count)}")
    if args.keep:
        print(f"  kept {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
