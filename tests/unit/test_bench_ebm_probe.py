"""bench/ebm_probe.py scores one ebm run along the way: a row per ``--every`` steps, each
scoring's samples and the energy's weights beside the JSON, the weights those of the run
at that step (a later sampler sweep rebuilds the model from them)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from bench import ebm_probe
from models import datasets
from models.engines import ebm


def test_a_probe_scores_every_few_steps_and_keeps_what_it_scored(tmp_path: Path) -> None:
    out = tmp_path / "probe.json"
    ebm_probe.main(
        [
            "--dataset", "digits", "--image-size", "8", "--steps", "4", "--every", "2",
            "--per-class", "2", "--sample-steps", "2", "--set", "width=4",
            "--set", "langevin_steps=2", "--set", "batch_size=8",
            "--classifiers", str(tmp_path / "classifiers"), "--out", str(out),
        ]
    )  # fmt: skip
    report = json.loads(out.read_text())
    assert report["config"]["width"] == 4 and report["config"]["max_steps"] == 4
    rows = report["rows"]
    assert [row["step"] for row in rows] == [2, 4]
    for row in rows:
        assert 0 <= row["label_agreement"] <= 1 and 0 <= row["buffer_label_agreement"] <= 1
        assert np.isfinite(row["fd"]) and {"e_pos", "e_neg", "loss"} <= row.keys()
    samples = np.load(tmp_path / "probe.4.npy")
    assert samples.shape == (20, 1, 8, 8) and samples.dtype == np.uint8
    # The saved weights rebuild the step-4 energy, which draws those samples again.
    data = datasets.load("digits", "train", 8)
    config = ebm.resolve_config(ebm.EBMConfig(width=4, image_size=8), None)
    net = ebm.build_energy(config, 1, data.num_classes)
    net.load_state_dict(torch.load(tmp_path / "probe.4.pt"))
    labels = torch.arange(10).repeat_interleave(2)
    trained = ebm.Trained("ebm", {}, 10, (1, 8, 8), data.class_names, {"energy": net}, {})
    again = ebm.ENGINE.draw(trained, config, ebm.sampling.Draw(20, labels, 0, {"steps": 2}))
    assert np.array_equal(again.numpy(), samples)
