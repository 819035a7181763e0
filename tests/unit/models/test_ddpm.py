"""Specification of the "ddpm" engine, on tiny 8x8 shapes and a 16-channel UNet."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import DDIMPipeline, DDIMScheduler, DDPMPipeline, DDPMScheduler
from safetensors.torch import load_file

from models import datasets, engines
from models.engines import ddpm, ddpm_steps
from models.engines.base import EngineError, Hooks, Stopped, Trained, TrainingDiverged

TINY = {
    "max_steps": 4,
    "batch_size": 8,
    "base_channels": 16,
    "layers_per_block": 1,
    "warmup_steps": 0,
    "lr": 1e-3,
    "seed": 0,
}
engine = engines.get("ddpm")


@pytest.fixture(scope="module")
def trained(tiny_shapes: datasets.ImageDataset) -> Trained:
    return engine.train(tiny_shapes, TINY)


@pytest.fixture(scope="module")
def unconditional() -> Trained:
    """An untrained unconditional UNet: enough to compare samplers with diffusers."""
    config = ddpm.resolve_config(ddpm.DDPMConfig(**TINY, conditional=False, image_size=8), 8)
    torch.manual_seed(0)
    unet = ddpm.build_unet(config, 3, 5).eval().requires_grad_(False)
    shape = (3, 8, 8)
    return Trained("ddpm", dataclasses.asdict(config), 5, shape, list("abcde"), {"unet": unet})


def _diffusers_images(pipeline: DDIMPipeline | DDPMPipeline, n: int, steps: int) -> torch.Tensor:
    pipeline.set_progress_bar_config(disable=True)
    generator = torch.Generator().manual_seed(0)
    images = pipeline(
        batch_size=n, generator=generator, num_inference_steps=steps, output_type="np"
    )
    return torch.from_numpy((images.images * 255).round().astype(np.uint8)).permute(0, 3, 1, 2)


def test_unknown_engine_lists_the_registered_ones():
    with pytest.raises(EngineError, match=r"unknown engine 'ddmp'.*'ddpm'"):
        engines.get("ddmp")


@pytest.mark.parametrize(
    ("size", "mult"), [(8, [1, 2]), (16, [1, 2, 2]), (28, [1, 2, 2]), (32, [1, 2, 2, 2])]
)
def test_default_config_picks_one_level_per_halving_of_the_image(size, mult):
    config = engine.default_config(image_size=size)
    assert config["image_size"] == size and config["channel_mult"] == mult
    assert config["num_train_timesteps"] == 1000 and config["conditional"] is True


@pytest.mark.parametrize("size", [7, 30, 256])
def test_unsupported_image_size_names_the_sizes_that_work(size):
    with pytest.raises(
        EngineError, match=rf"image_size {size} is not supported.*8, 10, 12, 14, 16, 20"
    ):
        engine.default_config(image_size=size)


def test_unknown_config_key_is_named(tiny_shapes):
    with pytest.raises(EngineError, match="unknown ddpm config key 'learning_rate'"):
        engine.train(tiny_shapes, {**TINY, "learning_rate": 0.1})


def test_bad_config_value_says_how_to_fix_it(tiny_shapes):
    with pytest.raises(EngineError, match=r"'cfg_dropout': Input should be less than 1"):
        engine.train(tiny_shapes, {**TINY, "cfg_dropout": 1.5})
    with pytest.raises(EngineError, match="'beta_schedule': Input should be 'linear' or 'cosine'"):
        engine.train(tiny_shapes, {**TINY, "beta_schedule": "quadratic"})


def test_training_reports_progress_with_the_loss_every_step(tiny_shapes):
    calls = []
    hooks = Hooks(progress=lambda step, total, **metrics: calls.append((step, total, metrics)))
    result = engine.train(tiny_shapes, {**TINY, "max_steps": 3}, hooks)
    assert [(step, total) for step, total, _ in calls] == [(1, 3), (2, 3), (3, 3)]
    assert all(set(metrics) == {"loss", "lr", "grad_norm"} for _, _, metrics in calls)
    assert result.metrics["steps"] == 3 and result.metrics["loss"] > 0


def test_trained_model_describes_itself(trained, tiny_shapes):
    assert trained.engine == "ddpm" and trained.image_shape == (3, 8, 8)
    assert trained.num_classes == 5 and trained.class_names == tiny_shapes.class_names
    assert trained.config["channel_mult"] == [1, 2] and trained.config["max_steps"] == 4


def test_training_resizes_the_data_to_the_configured_size(tiny_shapes):
    result = engine.train(tiny_shapes, {**TINY, "max_steps": 1, "image_size": 16})
    assert engine.sample(result, 2, steps=2).shape == (2, 3, 16, 16)


def test_guidance_and_sampler_change_the_images(trained):
    base = engine.sample(trained, 4, seed=0, steps=3)
    assert not torch.equal(base, engine.sample(trained, 4, seed=0, steps=3, guidance_scale=1.0))
    ancestral = engine.sample(trained, 4, seed=0, steps=3, sampler="ddpm")
    assert not torch.equal(base, ancestral)
    assert torch.equal(ancestral, engine.sample(trained, 4, seed=0, steps=3, sampler="ddpm"))


def test_batching_the_sampler_keeps_every_image_valid(trained):
    images = engine.sample(trained, 5, seed=0, steps=2, batch_size=2)
    assert images.shape == (5, 3, 8, 8)


def test_our_ddim_sampler_matches_diffusers_ddim_pipeline(unconditional):
    ours = engine.sample(unconditional, 4, seed=0, steps=10, sampler="ddim", precision="fp32")
    pipeline = DDIMPipeline(unet=unconditional.modules["unet"], scheduler=DDIMScheduler())
    theirs = _diffusers_images(pipeline, 4, 10)
    assert (ours.int() - theirs.int()).abs().max() <= 1  # float rounding at the uint8 step


def test_our_ddpm_sampler_matches_diffusers_ddpm_pipeline(unconditional):
    ours = engine.sample(unconditional, 4, seed=0, steps=10, sampler="ddpm", precision="fp32")
    pipeline = DDPMPipeline(unet=unconditional.modules["unet"], scheduler=DDPMScheduler())
    theirs = _diffusers_images(pipeline, 4, 10)
    assert (ours.int() - theirs.int()).abs().max() <= 1


def test_labels_for_an_unconditional_model_are_refused(unconditional):
    with pytest.raises(EngineError, match="conditional: false; pass labels=None"):
        engine.sample(unconditional, 1, labels=torch.tensor([0]), steps=1)


def test_unknown_sample_option_and_bad_values_are_refused(trained):
    with pytest.raises(EngineError, match="unknown ddpm sample option 'step'"):
        engine.sample(trained, 1, step=3)
    with pytest.raises(EngineError, match=r"sampler must be one of \['ddim', 'ddpm', 'dpm_s"):
        engine.sample(trained, 1, sampler="euler")
    with pytest.raises(EngineError, match=r"steps must be an integer in \[1, 1000\]"):
        engine.sample(trained, 1, steps=0)


def test_sampling_reports_progress_and_stops_when_asked(trained):
    seen = []
    engine.sample(trained, 3, steps=2, batch_size=2, progress=lambda s, t: seen.append((s, t)))
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]
    with pytest.raises(Stopped):
        engine.sample(trained, 3, steps=2, should_stop=lambda: True)


def test_save_then_load_gives_identical_samples(trained, tmp_path):
    files = engine.save(trained, tmp_path)
    assert sorted(p.name for p in files) == ["config.json", "model.safetensors"]
    description = json.loads((tmp_path / "config.json").read_text())
    assert description["engine"] == "ddpm" and description["format_version"] == 1
    assert description["image_shape"] == [3, 8, 8] and description["num_classes"] == 5
    assert description["config"]["channel_mult"] == [1, 2]
    expected = engine.sample(trained, 4, seed=3, steps=3)
    assert torch.equal(engine.sample(engine.load(tmp_path), 4, seed=3, steps=3), expected)


def test_saved_weights_are_the_ema_weights(trained, tmp_path):
    engine.save(trained, tmp_path)
    saved = load_file(tmp_path / "model.safetensors")
    for key, value in trained.modules["unet"].state_dict().items():
        assert torch.equal(saved[f"unet.{key}"], value)


def test_resuming_with_a_different_model_config_is_refused(tiny_shapes, tmp_path):
    kept: list[Path] = []
    hooks = Hooks(checkpoint=lambda step, d: kept.append(Path(shutil.copytree(d, tmp_path / "c"))))
    engine.train(tiny_shapes, {**TINY, "max_steps": 2, "checkpoint_every": 2}, hooks)
    with pytest.raises(EngineError, match=r"cannot resume: config \['base_channels'"):
        engine.train(tiny_shapes, {**TINY, "base_channels": 8}, Hooks(resume_from=kept[0]))


def test_a_nan_loss_raises_training_diverged_saying_to_lower_lr(tiny_shapes):
    with pytest.raises(TrainingDiverged, match=r"became nan at step \d+; lower lr \(now 10;"):
        engine.train(tiny_shapes, {**TINY, "max_steps": 30, "lr": 10.0, "grad_clip": 0.0})


def test_unconditional_training_needs_no_labels(tiny_shapes):
    result = engine.train(tiny_shapes, {**TINY, "max_steps": 1, "conditional": False})
    assert engine.sample(result, 2, steps=1).shape == (2, 3, 8, 8)


def test_defaults_alone_train_on_a_dataset(tiny_shapes):
    result = engine.train(tiny_shapes, {"max_steps": 1})
    assert result.config["image_size"] == 8
    assert result.config["base_channels"] == 32 and result.config["layers_per_block"] == 1
    assert result.config["batch_size"] == 32 and result.config["lr"] == pytest.approx(1e-3)


def test_dataset_labels_outside_its_classes_are_refused(tiny_shapes):
    broken = dataclasses.replace(tiny_shapes, num_classes=2, class_names=["a", "b"])
    with pytest.raises(EngineError, match=r"dataset labels must lie in \[0, 2\), got 0 to 4"):
        engine.train(broken, TINY)


def test_defaults_scale_with_the_image_size():
    small, large = engine.default_config(image_size=16), engine.default_config(image_size=32)
    assert (small["base_channels"], small["layers_per_block"], small["batch_size"]) == (32, 1, 32)
    assert (large["base_channels"], large["layers_per_block"], large["batch_size"]) == (64, 2, 128)
    assert large["lr"] < small["lr"]


def test_an_explicit_value_overrides_the_size_default(tiny_shapes):
    result = engine.train(tiny_shapes, {"max_steps": 1, "base_channels": 16, "lr": 5e-4})
    assert result.config["base_channels"] == 16 and result.config["lr"] == pytest.approx(5e-4)
    assert result.config["layers_per_block"] == 1


def test_model_trained_on_fewer_timesteps_than_the_default_steps_samples_by_default(
    tiny_shapes: datasets.ImageDataset,
):
    short = engine.train(tiny_shapes, {**TINY, "max_steps": 1, "num_train_timesteps": 10})
    assert engine.sample(short, 2, None, seed=0).shape == (2, 3, 8, 8)


def test_a_checkpoint_from_before_the_shared_runtime_still_resumes(tmp_path):
    # ddpm checkpoints once kept bare loss values under "recent_losses" (the shared
    # runtime keeps {"loss": ...} terms under "recent"); a job resumed across that
    # upgrade must go on, with its reported loss.
    data = datasets.load("shapes", "train", 8, count=32)
    config = {
        "batch_size": 8, "base_channels": 16, "layers_per_block": 1, "warmup_steps": 0,
        "seed": 0, "max_steps": 3, "checkpoint_every": 2,
    }  # fmt: skip
    kept: list[Path] = []
    keep = lambda step, d: kept.append(Path(shutil.copytree(d, tmp_path / str(step))))  # noqa: E731
    ddpm.ENGINE.train(data, config, Hooks(checkpoint=keep))
    path = kept[0] / "checkpoint.json"
    state = json.loads(path.read_text())
    state["recent_losses"] = [term["loss"] for term in state.pop("recent")]
    path.write_text(json.dumps(state))
    resumed = ddpm.ENGINE.train(data, config, Hooks(resume_from=kept[0]))
    assert resumed.metrics["steps"] == 3
    assert math.isfinite(resumed.metrics["loss"])


def _norm_groups(unet: torch.nn.Module) -> set[int]:
    return {m.num_groups for m in unet.modules() if isinstance(m, torch.nn.GroupNorm)}


def test_norm_groups_keep_four_channels_in_each_unless_named(tiny_shapes):
    # One channel per group (32 groups of a 32-channel UNet) drew 28 px digits on grey.
    assert ddpm.size_defaults(28).norm_groups == 8 and ddpm.size_defaults(32).norm_groups == 16
    assert _norm_groups(engine.train(tiny_shapes, {**TINY, "max_steps": 1}).modules["unet"]) == {4}
    named = engine.train(tiny_shapes, {**TINY, "max_steps": 1, "norm_groups": 2})
    assert _norm_groups(named.modules["unet"]) == {2} and named.config["norm_groups"] == 2
    with pytest.raises(EngineError, match="norm_groups 3 does not divide base_channels 16,"):
        engine.train(tiny_shapes, {**TINY, "norm_groups": 3})


def test_a_model_saved_before_norm_groups_existed_loads_as_it_was_built(trained, tmp_path):
    # Such a model was built with gcd(32, base_channels) groups: 16 for base 16, not 4.
    engine.save(trained, tmp_path)
    path = tmp_path / "config.json"
    description = json.loads(path.read_text())
    del description["config"]["norm_groups"]
    path.write_text(json.dumps(description))
    loaded = engine.load(tmp_path)
    assert _norm_groups(loaded.modules["unet"]) == {16} and loaded.config["norm_groups"] == 16
    assert ddpm.DDPMConfig.saved({"base_channels": 64})["norm_groups"] == 32
    assert ddpm.DDPMConfig.saved({"base_channels": 64, "norm_groups": 4})["norm_groups"] == 4


def test_guidance_left_out_is_the_models_own_by_image_size(trained, tiny_shapes):
    # Guidance 2 pulled 28 px MNIST samples off their class (0.24 agreement vs 0.93 unguided).
    assert [ddpm.size_defaults(s).sample_guidance_scale for s in (16, 20, 28, 32)] == [
        2.0,
        1.0,
        1.0,
        2.0,
    ]
    assert trained.config["sample_guidance_scale"] == 2.0  # the 8 px shapes
    labels = torch.arange(4) % tiny_shapes.num_classes
    pick = {"steps": 3, "seed": 1, "labels": labels}
    unnamed = engine.sample(trained, 4, **pick)
    assert torch.equal(unnamed, engine.sample(trained, 4, guidance_scale=2.0, **pick))
    assert not torch.equal(unnamed, engine.sample(trained, 4, guidance_scale=1.0, **pick))


def test_models_and_checkpoints_from_before_sample_guidance_scale_keep_scale_2(tmp_path):
    assert ddpm.DDPMConfig.saved({"image_size": 28})["sample_guidance_scale"] == 2.0
    # At 28 px, where today's default (1) differs from what the checkpoint's run had (2).
    data = datasets.load("shapes", "train", 28, count=16)
    config = {**TINY, "base_channels": 8, "batch_size": 4, "max_steps": 3, "checkpoint_every": 2}
    kept: list[Path] = []
    keep = lambda step, d: kept.append(Path(shutil.copytree(d, tmp_path / str(step))))  # noqa: E731
    ddpm.ENGINE.train(data, config, Hooks(checkpoint=keep))
    path = kept[0] / "checkpoint.json"
    state = json.loads(path.read_text())
    del state["config"]["sample_guidance_scale"]  # an option that does not shape the model
    path.write_text(json.dumps(state))
    resumed = ddpm.ENGINE.train(data, config, Hooks(resume_from=kept[0]))
    assert resumed.metrics["steps"] == 3
    assert resumed.config["sample_guidance_scale"] == 1.0  # a sampling default, not the run's


def test_guided_noise_is_the_lerp_of_separate_conditional_and_null_label_forwards(trained):
    # Ho & Salimans eq. 6 from one batched forward must equal the two forwards run apart:
    # nothing in the UNet may mix the two halves of the batch.
    unet = trained.modules["unet"]
    x = torch.randn((6, *trained.image_shape), generator=torch.Generator().manual_seed(1))
    t, labels = torch.tensor(500), torch.arange(6) % trained.num_classes
    null = torch.full_like(labels, trained.num_classes)
    with torch.inference_mode():
        guided = ddpm_steps.predict_noise(unet, x, t, torch.cat([labels, null]), 3.0)
        conditional = unet(x, t, class_labels=labels, return_dict=False)[0]
        unconditional = unet(x, t, class_labels=null, return_dict=False)[0]
    expected = unconditional + 3.0 * (conditional - unconditional)
    assert not torch.allclose(conditional, unconditional)  # the label does reach the net
    torch.testing.assert_close(guided, expected, rtol=1e-4, atol=1e-4)
