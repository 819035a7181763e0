"""Fine-tuning (``Hooks.init_from``): a run starts from a saved model's weights."""

from __future__ import annotations

import pytest
import torch

from models import datasets, engines
from models.engines.base import EngineError, Hooks
from models.engines.runtime.model_files import read_trained

DDPM = {"max_steps": 2, "batch_size": 8, "base_channels": 16, "layers_per_block": 1, "seed": 0}
GAN = {"max_steps": 2, "batch_size": 8, "width": 4, "z_dim": 8, "seed": 0}
# An lr this small leaves the weights where they started, so "started from the parent"
# is visible as "ended at the parent".
STILL = {"lr": 1e-12, "warmup_steps": 0}


@pytest.fixture(scope="module")
def ddpm_parent(tiny_shapes, tmp_path_factory):
    directory = tmp_path_factory.mktemp("ddpm-parent")
    engines.get("ddpm").save(engines.get("ddpm").train(tiny_shapes, DDPM), directory)
    return directory


def states_close(module: torch.nn.Module, saved: dict[str, torch.Tensor]) -> bool:
    """The learned weights (not batch-norm statistics, which any forward pass moves)."""
    return all(torch.allclose(v, saved[k], atol=1e-6) for k, v in module.named_parameters())


def test_ddpm_fine_tune_starts_from_the_parent_weights(tiny_shapes, ddpm_parent):
    _, saved = read_trained(ddpm_parent, "ddpm")
    config = {**DDPM, **STILL, "max_steps": 1, "seed": 1}
    tuned = engines.get("ddpm").train(tiny_shapes, config, Hooks(init_from=ddpm_parent))
    scratch = engines.get("ddpm").train(tiny_shapes, config)
    assert states_close(tuned.modules["unet"], saved["unet"])
    assert not states_close(scratch.modules["unet"], saved["unet"])


def test_ddpm_fine_tune_with_another_architecture_is_refused(tiny_shapes, ddpm_parent):
    with pytest.raises(EngineError, match="does not fit this config"):
        engines.get("ddpm").train(
            tiny_shapes, {**DDPM, "base_channels": 32}, Hooks(init_from=ddpm_parent)
        )


def test_ddpm_fine_tune_on_other_classes_is_refused(tiny_shapes, ddpm_parent):
    fewer = datasets.ImageDataset(
        "two", "train", tiny_shapes.images, tiny_shapes.labels % 2, 2, ["a", "b"]
    )
    with pytest.raises(EngineError, match="5 classes"):
        engines.get("ddpm").train(fewer, DDPM, Hooks(init_from=ddpm_parent))


def test_gan_fine_tune_starts_generator_and_discriminator_from_the_parent(tiny_shapes, tmp_path):
    gan = engines.get("gan")
    gan.save(gan.train(tiny_shapes, GAN), tmp_path)
    _, saved = read_trained(tmp_path, "gan")
    assert set(saved) == {"generator", "discriminator"}
    tuned = gan.train(
        tiny_shapes,
        {**GAN, "max_steps": 1, "lr_g": 1e-12, "lr_d": 1e-12},
        Hooks(init_from=tmp_path),
    )
    assert states_close(tuned.modules["generator"], saved["generator"])
    assert states_close(tuned.modules["discriminator"], saved["discriminator"])


def test_ebm_cannot_start_from_saved_weights(tiny_shapes, tmp_path):
    with pytest.raises(EngineError, match="init_from"):
        engines.get("ebm").train(tiny_shapes, {"max_steps": 1}, Hooks(init_from=tmp_path))
