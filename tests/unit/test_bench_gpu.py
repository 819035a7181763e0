"""bench/gpu.py --smoke: the one-command GPU bench runs end to end on CPU, with every
section measured against its baseline and the JSON written, so the first run on a lent
GPU host does not fail on a typo."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_smoke_mode_measures_every_section_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "gpu.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gpu.py"), "--smoke", "--out", str(out)],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results["mode"] == "smoke"
    for section, baseline in (("train", "diffusers"), ("sample", "diffusers"),
                              ("fid", "pytorch-fid")):  # fmt: skip
        figures = results[section]
        assert "error" not in figures, figures
        assert figures["ours"]["images_per_s"] > 0 and figures[baseline]["images_per_s"] > 0
        expected = figures["ours"]["images_per_s"] / figures[baseline]["images_per_s"]
        assert math.isclose(figures["ratio"], expected, rel_tol=1e-2)
        assert f"{section:6s} ours" in run.stdout
    # Same weights, same images: the two Inception paths agree (exactly, on CPU).
    assert results["fid"]["fid_relative_difference"] < 1e-6
    fid = results["fid"]
    assert fid["features_max_abs_difference"] <= 1e-4 * fid["features_max_abs"]
    # The multistep solvers are timed beside DDIM, each with its ratio against the pipeline.
    for solver in ("dpm_solver_multistep", "unipc"):
        figure = results["sample"]["solvers"][solver]
        assert figure["images_per_s"] > 0
        expected = figure["images_per_s"] / results["sample"]["diffusers"]["images_per_s"]
        assert math.isclose(figure["ratio_vs_ddimpipeline"], expected, rel_tol=1e-2)
    # Smoke mode also takes the eager (uncompiled) figures, as full mode does.
    assert results["train"]["ours_eager"]["images_per_s"] > 0
    assert results["sample"]["ours_eager"]["images_per_s"] > 0
    # Both training loops ran the engine's UNet at the smoke sizes.
    assert results["train"]["settings"]["unet"]["base_channels"] == 8
