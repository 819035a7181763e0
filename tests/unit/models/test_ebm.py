"""Specification of the "ebm" engine, on tiny 8x8 shapes, a 4-channel energy net and
short Langevin chains."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from models import datasets, engines
from models.engines import ebm
from models.engines.base import EngineError, Hooks, Stopped, Trained, TrainingDiverged
from models.engines.runtime import checkpoints, pixels

TINY = {
    "max_steps": 3,
    "batch_size": 8,
    "width": 4,
    "buffer_size": 16,
    "langevin_steps": 3,
    "sample_steps": 3,
    "seed": 0,
}
engine = engines.get("ebm")


@pytest.fixture(scope="module")
def trained(tiny_shapes: datasets.ImageDataset) -> Trained:
    return engine.train(tiny_shapes, TINY)


def test_training_reports_every_loss_term_every_step(tiny_shapes):
    seen = []
    hooks = Hooks(progress=lambda step, total, **metrics: seen.append((step, total, metrics)))
    engine.train(tiny_shapes, {**TINY, "max_steps": 2}, hooks)
    assert [(step, total) for step, total, _ in seen] == [(1, 2), (2, 2)]
    terms = {"loss", "e_pos", "e_neg", "reg", "ce", "lr", "grad_norm"}
    assert all(set(m) == terms for _, _, m in seen)


def test_default_config_follows_du_and_mordatch():
    config = engine.default_config(image_size=16)
    assert config["image_size"] == 16 and config["conditional"] is True
    assert config["reinit_prob"] == 0.05 and config["buffer_size"] == 10_000
    chains = {k: config[k] for k in ("langevin_steps", "grad_clip", "sample_steps", "lr")}
    assert chains == {"langevin_steps": 10, "grad_clip": 0.01, "sample_steps": 60, "lr": 3e-4}
    assert config["ema_decay"] == 0.0 and config["max_steps"] == 5000  # the last weights sample


def test_from_28_px_chains_move_faster_and_longer_and_the_weights_average_learns_slower():
    # Du & Mordatch's chains left MNIST's background in salt-and-pepper noise at 28 px;
    # the faster chains' energy swung between clean and noisy samples within the budget.
    for size in (28, 32, 64):
        config = engine.default_config(image_size=size)
        keys = ("langevin_steps", "grad_clip", "sample_steps", "lr", "ema_decay", "max_steps")
        assert {k: config[k] for k in keys} == {
            "langevin_steps": 20, "grad_clip": 0.03, "sample_steps": 400, "lr": 1e-4,
            "ema_decay": 0.999, "max_steps": 2000,  # past ~2,500 steps the energy drifts
        }  # fmt: skip


def test_a_left_out_max_steps_is_resolved_by_size_and_a_named_one_still_meets_the_work_limit():
    # Before the data's size is known the work limit counts a left-out max_steps as 5,000.
    options = ebm.EBMConfig(batch_size=4096, image_size=64)
    assert options.max_steps is None
    assert engine.resolve(options, None).max_steps == 2000
    with pytest.raises(ValueError, match="max_steps × batch_size × image_size² is 4.29e\\+12"):
        ebm.EBMConfig(batch_size=4096, image_size=64, max_steps=256_000)


def test_the_cosine_schedule_takes_lr_down_to_nearly_0_at_max_steps(tiny_shapes):
    def lrs(schedule: str) -> list[float]:
        seen: list[float] = []
        hooks = Hooks(progress=lambda step, total, **m: seen.append(m["lr"]))
        config = {**TINY, "max_steps": 4, "lr": 1e-3, "lr_schedule": schedule}
        engine.train(tiny_shapes, config, hooks)
        return seen

    assert lrs("constant") == [1e-3] * 4
    # lr·(1 + cos(π·(step − 1)/4))/2 for steps 1..4
    assert lrs("cosine") == pytest.approx([1e-3, 8.5355e-4, 5e-4, 1.4645e-4], rel=1e-4)
    assert engine.default_config(image_size=28)["lr_schedule"] == "constant"


def test_a_schedule_that_is_not_one_is_refused(tiny_shapes):
    with pytest.raises(EngineError, match=r"lr_schedule"):
        engine.train(tiny_shapes, {**TINY, "lr_schedule": "step"})


def test_named_chain_settings_win_over_the_size_defaults(tiny_shapes):
    named = {**TINY, "grad_clip": 0.02, "langevin_steps": 2}
    trained = engine.train(tiny_shapes, {**named, "max_steps": 1})
    assert trained.config["grad_clip"] == 0.02 and trained.config["langevin_steps"] == 2
    assert trained.config["sample_steps"] == 3


@pytest.mark.parametrize("size", [12, 48])
def test_unsupported_image_size_names_the_sizes_that_work(tiny_shapes, size):
    with pytest.raises(
        EngineError, match=rf"image_size {size} is not supported.*8, 16, 28, 32, 64"
    ):
        engine.train(tiny_shapes, {**TINY, "image_size": size})


def test_unknown_config_key_is_named(tiny_shapes):
    with pytest.raises(EngineError, match=r"unknown ebm config key 'steps'"):
        engine.train(tiny_shapes, {**TINY, "steps": 10})


def test_a_buffer_smaller_than_a_batch_is_refused(tiny_shapes):
    with pytest.raises(EngineError, match=r"buffer_size must be at least batch_size \(8\)"):
        engine.train(tiny_shapes, {**TINY, "buffer_size": 4})


@pytest.mark.parametrize("option", [{"steps": 5}, {"step_size": 30.0}, {"noise": 0.05}])
def test_langevin_options_change_the_images(trained, option):
    assert not torch.equal(
        engine.sample(trained, 4, seed=0), engine.sample(trained, 4, seed=0, **option)
    )


def test_labels_steer_the_chains(trained):
    assert not torch.equal(
        engine.sample(trained, 4, labels=torch.zeros(4, dtype=torch.int64), seed=0),
        engine.sample(trained, 4, labels=torch.ones(4, dtype=torch.int64), seed=0),
    )


def test_unknown_sample_option_and_bad_values_are_refused(trained):
    with pytest.raises(EngineError, match=r"unknown ebm sample option 'guidance_scale'"):
        engine.sample(trained, 2, guidance_scale=2.0)
    with pytest.raises(EngineError, match=r"steps must be a positive integer"):
        engine.sample(trained, 2, steps=0)


def test_sampling_reports_progress_and_stops_when_asked(trained):
    seen: list[tuple[int, int]] = []
    engine.sample(trained, 4, seed=0, batch_size=2, progress=lambda d, t: seen.append((d, t)))
    assert seen == [(i, 6) for i in range(1, 7)]
    with pytest.raises(Stopped):
        engine.sample(trained, 4, seed=0, should_stop=lambda: True)


def test_checkpoints_carry_the_replay_buffer_with_its_labels(tiny_shapes, tmp_path):
    kept: list[dict] = []
    keep = lambda step, directory: kept.append(checkpoints.load_state(directory))  # noqa: E731
    engine.train(
        tiny_shapes, {**TINY, "max_steps": 1, "checkpoint_every": 1}, Hooks(checkpoint=keep)
    )
    (state,) = kept
    assert state["buffer"].shape == (16, 3, 8, 8) and state["buffer_labels"].shape == (16,)
    assert 0 <= int(state["buffer_labels"].min()) and int(state["buffer_labels"].max()) < 5
    assert float(state["buffer"].abs().max()) <= 1.0


def test_the_trained_model_is_the_moving_average_of_the_weights(tiny_shapes, tmp_path):
    kept: list[dict] = []
    keep = lambda step, directory: kept.append(checkpoints.load_state(directory))  # noqa: E731
    config = {**TINY, "ema_decay": 0.5, "checkpoint_every": 3}
    result = engine.train(tiny_shapes, config, Hooks(checkpoint=keep))
    (state,) = kept
    averaged, last = state["ema"]["averaged"], state["net"]
    assert state["ema"]["num_updates"] == 3
    saved = result.modules["energy"].state_dict()
    assert all(torch.equal(saved[k], averaged[k]) for k in averaged)
    assert any(not torch.equal(averaged[k], last[k]) for k in last)
    # ema_decay 0 keeps the last weights (what sampled before the average existed).
    plain = engine.train(tiny_shapes, {**TINY, "ema_decay": 0.0}).modules["energy"].state_dict()
    assert all(torch.equal(plain[k], last[k]) for k in last)


def test_a_checkpoint_from_before_the_average_resumes_sampling_its_last_weights(
    tiny_shapes, tmp_path
):
    kept: list[Path] = []
    keep = lambda step, d: kept.append(Path(shutil.copytree(d, tmp_path / str(step))))  # noqa: E731
    first = {**TINY, "max_steps": 1, "checkpoint_every": 1}
    engine.train(tiny_shapes, first, Hooks(checkpoint=keep))
    path = kept[0] / "checkpoint.json"
    state = json.loads(path.read_text())
    del state["ema"], state["config"]["ema_decay"]  # as written before ema_decay existed
    path.write_text(json.dumps(state))
    resumed = engine.train(tiny_shapes, {**TINY, "max_steps": 2}, Hooks(resume_from=kept[0]))
    assert resumed.config["ema_decay"] == 0.0 and resumed.metrics["steps"] == 2


def test_a_diverging_loss_raises_training_diverged_saying_what_to_change(tiny_shapes, monkeypatch):
    # No learning rate within the options' bounds (lr ≤ 10) diverges this tiny run for
    # sure, so a NaN in the data makes the loss NaN.
    monkeypatch.setattr(pixels, "to_unit_range", lambda x: x.float() * float("nan"))
    with pytest.raises(TrainingDiverged, match=r"became (nan|inf) at step \d+; lower lr \(now 10"):
        engine.train(tiny_shapes, {**TINY, "max_steps": 10, "lr": 10.0})


def test_unconditional_training_has_one_energy_and_samples_without_labels(tiny_shapes):
    seen = []
    hooks = Hooks(progress=lambda step, total, **metrics: seen.append(metrics))
    trained = engine.train(tiny_shapes, {**TINY, "max_steps": 1, "conditional": False}, hooks)
    assert set(seen[0]) == {"loss", "e_pos", "e_neg", "reg", "lr", "grad_norm"}
    assert trained.modules["energy"].head.out_features == 1
    assert engine.sample(trained, 3, seed=0).shape == (3, 3, 8, 8)
    with pytest.raises(EngineError, match=r"conditional: false; pass labels=None"):
        engine.sample(trained, 2, labels=torch.tensor([0, 1]))


def test_langevin_moves_samples_downhill_in_energy(trained):
    net = trained.modules["energy"]
    generator = torch.Generator().manual_seed(0)
    x0 = torch.rand((8, 3, 8, 8), generator=generator) * 2 - 1
    y = torch.arange(8) % 5
    x = ebm.langevin(
        net, x0, y, steps=20, step_size=10.0, noise=0.0, grad_clip=0.01, generator=generator
    )
    with torch.no_grad():
        assert ebm.energy(net, x, y).mean() < ebm.energy(net, x0, y).mean()
    assert not net.head.parametrizations.weight.original.requires_grad
