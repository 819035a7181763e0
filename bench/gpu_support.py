"""What bench/gpu.py measures with, apart from the measurements themselves: GPU
utilisation sampled in a thread, peak memory, synthetic images and weights, the figures
and the lines that report them.

diffusers and pytorch-fid (the baselines) are imported only by the sections that use
them (and by :func:`versions`, guarded), so a host without one still runs the others.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the conventional alias


class Utilisation:
    """Samples the GPU's utilisation (% of time a kernel ran, as nvidia-smi reports it)
    every ``interval`` seconds in a daemon thread, so a figure can say how busy the GPU
    was while it was taken. Reads nothing on CPU or without nvidia-ml-py (pynvml)."""

    def __init__(self, device: torch.device, interval: float = 0.05) -> None:
        self.device = device
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self.source = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if device.type != "cuda":
            return
        try:
            # torch.cuda.utilization reads NVML through pynvml and maps the torch device
            # index to NVML's (they differ under CUDA_VISIBLE_DEVICES).
            torch.cuda.utilization(device)
            self.source = "nvml"
        except Exception as error:  # noqa: BLE001 - no NVML: the figures go without it
            self.source = f"unavailable ({type(error).__name__}: {error})"

    def __enter__(self) -> Utilisation:
        if self.source == "nvml":
            self._thread = threading.Thread(target=self._run, daemon=True, name="gpu-util")
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append((time.perf_counter(), torch.cuda.utilization(self.device)))
            except Exception:  # noqa: BLE001 - a failed read leaves a gap, not a crash
                pass
            self._stop.wait(self.interval)

    def mean(self, start: float, end: float) -> float | None:
        """Mean utilisation (%) of the samples taken in [start, end] (perf_counter)."""
        values = [value for stamp, value in self.samples if start <= stamp <= end]
        return round(sum(values) / len(values), 1) if values else None


@dataclass
class Figure:
    """One measured rate and what the GPU did meanwhile."""

    images_per_s: float
    seconds: float
    gpu_util_pct: float | None = None
    peak_mib: float | None = None
    extra: dict[str, object] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {
            "images_per_s": round(self.images_per_s, 2),
            "seconds": round(self.seconds, 4),
            "gpu_util_pct": self.gpu_util_pct,
            "peak_mib": self.peak_mib,
            **self.extra,
        }

    def line(self) -> str:
        util = "-" if self.gpu_util_pct is None else f"{self.gpu_util_pct:.0f}%"
        peak = "-" if self.peak_mib is None else f"{self.peak_mib / 1024:.2f} GiB"
        return f"{self.images_per_s:10.1f} img/s  (GPU util {util:>4}, peak {peak})"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextlib.contextmanager
def peak_memory(device: torch.device, out: dict[str, float | None]) -> Iterator[None]:
    """Sets ``out["peak_mib"]``: torch's peak allocated memory over the block (CUDA only)."""
    if device.type == "cuda":
        sync(device)
        torch.cuda.reset_peak_memory_stats(device)
    try:
        yield
    finally:
        if device.type == "cuda":
            sync(device)
            out["peak_mib"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
        else:
            out["peak_mib"] = None


def smooth_images(n: int, channels: int, size: int, seed: int) -> torch.Tensor:
    """uint8 (n, channels, size, size): random blobs (noise upsampled from size/4), so the
    images have structure at several scales rather than being per-pixel noise."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.randn((n, channels, max(size // 4, 1), max(size // 4, 1)), generator=generator)
    fine = F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
    return (fine * 64 + 128).clamp(0, 255).to(torch.uint8)


def ratio(ours: float, theirs: float) -> float:
    return round(ours / theirs, 3) if theirs > 0 else float("nan")


def moments(pair: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    (x, y) = (np.asarray(p, dtype=np.float64) for p in pair)
    return x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False)


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {"torch": torch.__version__, "cuda": torch.version.cuda}
    for name in ("diffusers", "pytorch_fid"):
        try:
            found[name] = __import__(name).__version__
        except Exception:  # noqa: BLE001 - reported as missing; its section fails alone
            found[name] = None
    return found


@contextlib.contextmanager
def compile_setting(value: str) -> Iterator[None]:
    """``SYNTHGEN_COMPILE`` set to ``value`` for the block (the engine reads it per call)."""
    before = os.environ.get("SYNTHGEN_COMPILE")
    os.environ["SYNTHGEN_COMPILE"] = value
    try:
        yield
    finally:
        if before is None:
            del os.environ["SYNTHGEN_COMPILE"]
        else:
            os.environ["SYNTHGEN_COMPILE"] = before


def timed(run: Callable[[], object], images: int, util: Utilisation) -> Figure:
    memory: dict[str, float | None] = {}
    with peak_memory(util.device, memory):
        start = time.perf_counter()
        run()
        sync(util.device)
        end = time.perf_counter()
    return Figure(images / (end - start), end - start, util.mean(start, end), memory["peak_mib"])


# What bench/gpu.py aims for (ours / the baseline's throughput) and which baseline each
# section measures against.
TARGETS = {"train": 2.0, "sample": 3.0, "fid": 1.0}
BASELINE = {"train": "diffusers", "sample": "diffusers", "fid": "pytorch-fid"}


def report(name: str, result: dict[str, Any]) -> None:
    if "error" in result:
        print(f"{name:6s} FAILED: {result['error']}", flush=True)
        return
    print(f"{name:6s} ours        {Figure(**_figure(result['ours'])).line()}")
    for key in (BASELINE[name], "ours_eager"):
        if key in result:
            print(f"{'':6s} {key:11s} {Figure(**_figure(result[key])).line()}")
    for solver, figure in result.get("solvers", {}).items():
        steps = result["settings"]["solver_steps"]
        print(f"{'':6s} {solver} {steps} steps {Figure(**_figure(figure)).line()} "
              f"ratio {figure['ratio_vs_ddimpipeline']:.2f} vs DDIMPipeline 50")  # fmt: skip
    verdict = "meets" if result["ratio"] >= TARGETS[name] else "MISSES"
    line = f"{'':6s} ratio {result['ratio']:.2f} ({verdict} the target {TARGETS[name]:g}x)"
    if name == "fid":
        line += (f"; FID ours {result['ours']['fid']:.6g}, pytorch-fid "
                 f"{result['pytorch-fid']['fid']:.6g} (relative difference "
                 f"{result['fid_relative_difference']:.1e})")  # fmt: skip
    print(line, flush=True)


def _figure(values: dict[str, Any]) -> dict[str, Any]:
    keys = ("images_per_s", "seconds", "gpu_util_pct", "peak_mib")
    return {key: values[key] for key in keys}
