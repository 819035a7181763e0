"""Specification of the "gan" engine, on tiny 8x8 shapes and 4-channel networks."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from models import datasets, engines
from models.engines import gan
from models.engines.base import EngineError, Hooks, Trained, TrainingDiverged
from models.engines.runtime import checkpoints, pixels

TINY = {"max_steps": 3, "batch_size": 8, "width": 4, "z_dim": 8, "seed": 0}
engine = engines.get("gan")


@pytest.fixture(scope="module")
def trained(tiny_shapes: datasets.ImageDataset) -> Trained:
    return engine.train(tiny_shapes, TINY)


@pytest.mark.parametrize(
    ("variant", "terms"),
    [("dcgan", {"loss_d", "loss_g"}), ("vanilla", {"loss_d", "loss_g"}),
     ("wgan-gp", {"loss_d", "loss_g", "gp"})],
)  # fmt: skip
def test_every_variant_trains_and_reports_its_loss_terms_every_step(tiny_shapes, variant, terms):
    seen = []
    hooks = Hooks(progress=lambda step, total, **metrics: seen.append((step, total, metrics)))
    engine.train(tiny_shapes, {**TINY, "max_steps": 2, "variant": variant}, hooks)
    assert [(step, total) for step, total, _ in seen] == [(1, 2), (2, 2)]
    diagnostics = {"lr_d", "lr_g", "grad_norm_d", "grad_norm_g"}
    assert all(set(metrics) == terms | diagnostics for _, _, metrics in seen)


def test_default_config_resolves_the_variant_defaults():
    config = engine.default_config(image_size=16)
    assert config["variant"] == "dcgan" and config["image_size"] == 16
    assert config["n_critic"] == 1 and config["betas"] == [0.0, 0.9]


def test_wgan_gp_defaults_follow_gulrajani_et_al(tiny_shapes):
    trained = engine.train(tiny_shapes, {**TINY, "max_steps": 1, "variant": "wgan-gp"})
    assert trained.config["n_critic"] == 5 and trained.config["gp_weight"] == 10.0
    assert trained.config["lr_d"] == 1e-4


@pytest.mark.parametrize("size", [12, 48])
def test_unsupported_image_size_names_the_sizes_that_work(tiny_shapes, size):
    with pytest.raises(
        EngineError, match=rf"image_size {size} is not supported.*8, 16, 28, 32, 64"
    ):
        engine.train(tiny_shapes, {**TINY, "image_size": size})


def test_unknown_config_key_is_named(tiny_shapes):
    with pytest.raises(EngineError, match=r"unknown gan config key 'lr'"):
        engine.train(tiny_shapes, {**TINY, "lr": 1e-3})


def test_unknown_variant_lists_the_variants(tiny_shapes):
    with pytest.raises(EngineError, match=r"'variant': Input should be 'dcgan', 'vanilla'"):
        engine.train(tiny_shapes, {**TINY, "variant": "stylegan"})


def test_batch_size_does_not_change_the_images(trained):
    assert torch.equal(
        engine.sample(trained, 5, seed=1), engine.sample(trained, 5, seed=1, batch_size=2)
    )


def test_labels_steer_the_generator(trained):
    assert not torch.equal(
        engine.sample(trained, 4, labels=torch.zeros(4, dtype=torch.int64), seed=0),
        engine.sample(trained, 4, labels=torch.ones(4, dtype=torch.int64), seed=0),
    )


@pytest.mark.parametrize("variant", ["wgan-gp"])  # dcgan: test_engine_contract
def test_resumed_training_ends_bitwise_identical_to_an_uninterrupted_run(
    tiny_shapes, tmp_path, variant
):
    config = {**TINY, "max_steps": 4, "checkpoint_every": 2, "variant": variant}
    kept: dict[str, dict[int, Path]] = {"straight": {}, "resumed": {}}

    def keeper(run: str):
        def keep(step: int, directory: Path) -> None:
            kept[run][step] = Path(shutil.copytree(directory, tmp_path / f"{run}-{step}"))

        return keep

    engine.train(tiny_shapes, config, Hooks(checkpoint=keeper("straight")))
    hooks = Hooks(checkpoint=keeper("resumed"), resume_from=kept["straight"][2])
    engine.train(tiny_shapes, config, hooks)
    straight = checkpoints.load_state(kept["straight"][4])
    resumed = checkpoints.load_state(kept["resumed"][4])
    for part in ("g", "d", "ema"):
        flat_straight, _ = checkpoints.flatten_state(straight[part])
        flat_resumed, _ = checkpoints.flatten_state(resumed[part])
        assert flat_straight.keys() == flat_resumed.keys()
        for key, value in flat_straight.items():
            assert torch.equal(flat_resumed[key], value), (part, key)


def test_resuming_with_a_different_model_config_is_refused(tiny_shapes, tmp_path):
    kept: list[Path] = []
    keep = lambda step, directory: kept.append(Path(shutil.copytree(directory, tmp_path / "c")))  # noqa: E731
    engine.train(
        tiny_shapes, {**TINY, "max_steps": 1, "checkpoint_every": 1}, Hooks(checkpoint=keep)
    )
    with pytest.raises(EngineError, match=r"cannot resume: config \['z_dim'\]"):
        engine.train(tiny_shapes, {**TINY, "z_dim": 4}, Hooks(resume_from=kept[0]))


def test_a_nan_loss_raises_training_diverged_saying_what_to_change(tiny_shapes, monkeypatch):
    # No learning rate within the options' bounds (lr ≤ 10) diverges this tiny run for
    # sure, so a NaN in the data makes the loss NaN.
    monkeypatch.setattr(pixels, "to_unit_range", lambda x: x.float() * float("nan"))
    with pytest.raises(TrainingDiverged, match=r"became nan at step \d+; lower lr_d and lr_g"):
        engine.train(tiny_shapes, {**TINY, "max_steps": 20, "variant": "wgan-gp"})


def test_unconditional_training_samples_without_labels(tiny_shapes):
    trained = engine.train(tiny_shapes, {**TINY, "max_steps": 1, "conditional": False})
    assert engine.sample(trained, 3, seed=0).shape == (3, 3, 8, 8)
    with pytest.raises(EngineError, match=r"conditional: false; pass labels=None"):
        engine.sample(trained, 2, labels=torch.tensor([0, 1]))


def test_dataset_labels_outside_its_classes_are_refused(tiny_shapes):
    broken = datasets.ImageDataset(
        "shapes", "train", tiny_shapes.images, tiny_shapes.labels + 1, 5, list("abcde")
    )
    with pytest.raises(EngineError, match=r"dataset labels must lie in \[0, 5\), got 1 to 5"):
        engine.train(broken, TINY)


@pytest.mark.parametrize("size", [16, 28])
def test_other_image_sizes_train_from_resized_data(tiny_shapes, size):
    trained = engine.train(tiny_shapes, {**TINY, "max_steps": 1, "image_size": size})
    assert engine.sample(trained, 2, seed=0).shape == (2, 3, size, size)


@pytest.mark.parametrize(("size", "upsample"), [(8, "transposed"), (16, "transposed"),
                                                 (28, "nearest"), (32, "nearest")])  # fmt: skip
def test_generator_upsampling_defaults_by_image_size(size, upsample):
    config = engine.default_config(image_size=size)
    assert config["upsample"] == upsample
    g = gan.build_generator(gan.GANConfig(**config), 1, 10)
    has_transposed = any(isinstance(m, torch.nn.ConvTranspose2d) for m in g.modules())
    assert has_transposed == (upsample == "transposed")


@pytest.mark.parametrize("upsample", ["transposed", "nearest"])
def test_either_upsampling_trains_saves_and_loads(tiny_shapes, upsample, tmp_path):
    trained = engine.train(tiny_shapes, {**TINY, "max_steps": 2, "upsample": upsample})
    engine.save(trained, tmp_path)
    loaded = engine.load(tmp_path)
    assert loaded.config["upsample"] == upsample
    assert torch.equal(engine.sample(loaded, 4, seed=1), engine.sample(trained, 4, seed=1))
