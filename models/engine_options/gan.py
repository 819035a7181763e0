"""The gan engine's train and sampling options (the engine is :mod:`models.engines.gan`)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field
from pydantic.dataclasses import dataclass

from models.engine_options import convnets
from models.engine_options.base import CONFIG, Float, Int, TrainOptions, option
from models.engine_options.sampling import SampleOptions

Variant = Literal["dcgan", "vanilla", "wgan-gp"]
Beta = Annotated[float, Field(strict=True, ge=0, lt=1)]

VARIANT_DEFAULTS: dict[str, dict[str, object]] = {
    # Two-time-scale (lr_d > lr_g, Heusel et al. 2017) with β1 = 0 as SNGAN/BigGAN use
    # for hinge + spectral norm; one D step per G step keeps CPU runs fast.
    "dcgan": {"lr_g": 2e-4, "lr_d": 4e-4, "betas": [0.0, 0.9], "n_critic": 1},
    # Radford et al.'s Adam settings.
    "vanilla": {"lr_g": 2e-4, "lr_d": 2e-4, "betas": [0.5, 0.999], "n_critic": 1},
    # Gulrajani et al., Algorithm 1.
    "wgan-gp": {"lr_g": 1e-4, "lr_d": 1e-4, "betas": [0.0, 0.9], "n_critic": 5},
}


PRIVATE_VARIANTS = ("vanilla",)
"""Variants whose discriminator Opacus can train with per-example gradients (privacy):
dcgan's spectral norm is a parametrization Opacus's hooks cannot see through, and
wgan-gp's gradient penalty differentiates a gradient, which per-example hooks cannot take.
tests/unit/models/test_privacy.py checks this list against Opacus itself."""


def _by_variant(key: str) -> tuple[str, dict[str, object]]:
    return "variant", {variant: values[key] for variant, values in VARIANT_DEFAULTS.items()}


@dataclass(config=CONFIG)
class GANSampleOptions(SampleOptions):
    """Sampling options of gan: none (one pass of the generator)."""

    ENGINE = "gan"


@dataclass(config=CONFIG)
class GANConfig(TrainOptions):
    """Train options of gan: a class-conditional GAN in one of three variants."""

    ENGINE = "gan"
    DATA_PARALLEL = True
    IMAGE_SIZES = convnets.IMAGE_SIZES

    batch_size: Int = option(
        64, ge=2, le=4096, help="images per step (at least 2: batch norm needs pairs)"
    )
    variant: Variant = option(
        "dcgan",
        help="dcgan: projection D with spectral norm, hinge loss; vanilla: FC→transposed-conv "
        "G, BCE with label smoothing; wgan-gp: Wasserstein critic with gradient penalty",
    )
    z_dim: Int = option(128, ge=1, le=4096, help="dimensions of the latent z ~ N(0, I)")
    width: Int | None = option(
        ge=4,
        le=1024,
        by_size=convnets.WIDTH,
        help="channels at full resolution in G and D; doubled per halving, capped at ×8",
    )
    upsample: Literal["transposed", "nearest"] | None = option(
        by_size=convnets.UPSAMPLE,
        help="how G (dcgan, wgan-gp) doubles resolution: transposed convs, or nearest "
        "upsampling then a 3×3 conv",
    )
    lr_g: Float | None = option(
        gt=0, le=10, by_option=_by_variant("lr_g"), help="Adam learning rate of G"
    )
    lr_d: Float | None = option(
        gt=0, le=10, by_option=_by_variant("lr_d"), help="Adam learning rate of D"
    )
    betas: list[Beta] | None = option(
        min_length=2, max_length=2, by_option=_by_variant("betas"), help="Adam (β1, β2)"
    )
    n_critic: Int | None = option(
        ge=1, le=100, by_option=_by_variant("n_critic"), help="D updates per G update"
    )
    gp_weight: Float = option(10.0, ge=0, le=1e6, help="λ of the gradient penalty (wgan-gp)")
    label_smoothing: Float = option(
        0.9, gt=0, le=1, help="BCE target for real images (vanilla); 1: no smoothing"
    )
    ema_decay: Float = option(
        0.999, ge=0, lt=1, help="decay of G's weights' moving average that samples"
    )

    def privacy_refusal(self) -> str | None:
        if self.variant == "dcgan":
            return (
                "variant 'dcgan' puts spectral norm in the discriminator, through which "
                "Opacus cannot take each example's gradient; use variant 'vanilla'"
            )
        if self.variant == "wgan-gp":
            return (
                "variant 'wgan-gp' adds a gradient penalty (a gradient of each example's "
                "gradient), which per-example clipping cannot take; use variant 'vanilla'"
            )
        return None
