"""Networks of the GAN and EBM engines, for square images of :data:`SUPPORTED_SIZES`.

- ``Generator``: DCGAN layout (Radford et al. 2016, "Unsupervised Representation Learning
  with Deep Convolutional GANs") — a linear stem to a 4×4 (7×7 for 28 px) map, then
  ×2 stages with batch norm and ReLU: stride-2 transposed convs, or nearest upsampling
  and a 3×3 conv (SNGAN/BigGAN style; the default from 28 px, see ``default_upsample``).
  The class enters through conditional batch norm (a per-class gain and bias, de Vries
  et al. 2017), the label embedding Miyato & Koyama pair with their projection
  discriminator.
- ``ProjectionDiscriminator``: conv body, global sum pooling, ``linear(h) + <embed(y), h>``
  (Miyato & Koyama 2018, "cGANs with Projection Discriminator", eq. 3), spectral norm on
  every weight (Miyato et al. 2018). Without spectral norm it is the WGAN-GP critic
  (Gulrajani et al. 2017: no batch norm in a critic trained with a gradient penalty).
- ``VanillaGenerator`` / ``VanillaDiscriminator``: the small conditional GAN of tutorials
  (Mirza & Osindero 2014): ``[z, onehot(y)]`` → fully connected → transposed convs, and
  a conv discriminator that sees the label as constant one-hot input planes.
- ``EnergyNet``: the EBM's f(x) with one output per class, E(x, y) = −f(x)[y] (Grathwohl
  et al. 2020, "Your Classifier is Secretly an Energy Based Model"): strided convs with
  spectral norm (Du & Mordatch 2019, "Implicit Generation and Generalization in EBMs")
  and SiLU, a smooth activation, so the Langevin gradient ∇ₓE is continuous.

``num_classes == 0`` builds the unconditional network; labels are then ignored.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from models.engine_options import base as options
from models.engine_options import convnets

SUPPORTED_SIZES = convnets.IMAGE_SIZES
MAX_WIDTH_MULT = 8
Upsample = Literal["transposed", "nearest"]


def layout(image_size: int) -> tuple[int, int]:
    """(base resolution, number of ×2 stages) so that ``base * 2**stages == image_size``."""
    base = 7 if image_size == 28 else 4
    stages = (image_size // base).bit_length() - 1
    return base, stages


def default_width(image_size: int) -> int:
    """Channels at full resolution a config gets by default (:data:`convnets.WIDTH`)."""
    return int(options.pick(convnets.WIDTH, image_size))


def default_upsample(image_size: int) -> Upsample:
    """How the DCGAN generator doubles resolution by default (:data:`convnets.UPSAMPLE`)."""
    upsample: Upsample = options.pick(convnets.UPSAMPLE, image_size)
    return upsample


def _widths(width: int, stages: int) -> list[int]:
    """Channel count per resolution, coarsest first: width·2^stages … width (capped ×8)."""
    return [width * min(2 ** (stages - i), MAX_WIDTH_MULT) for i in range(stages + 1)]


class ConditionalBatchNorm2d(nn.Module):
    """Batch norm whose affine gain/bias are looked up per class. x: (b, c, h, w), y: (b,)."""

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=num_classes == 0)
        self.gain = nn.Embedding(num_classes, channels) if num_classes else None
        self.bias = nn.Embedding(num_classes, channels) if num_classes else None
        if self.gain is not None and self.bias is not None:
            # Start as the identity affine so early training matches plain batch norm.
            nn.init.zeros_(self.gain.weight)
            nn.init.zeros_(self.bias.weight)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.bn(x)
        if self.gain is None or self.bias is None:
            return h
        gain = 1 + self.gain(y)[:, :, None, None]
        return h * gain + self.bias(y)[:, :, None, None]


class Generator(nn.Module):
    """DCGAN generator, conditional batch norm. z: (b, z_dim), y: (b,) → (b, c, s, s) in [-1, 1].

    ``upsample`` picks each ×2 stage: ``"transposed"`` (DCGAN's 4×4 stride-2 transposed
    conv) or ``"nearest"`` (nearest-neighbour ×2, then a 3×3 conv, as SNGAN's and BigGAN's
    generators do). See :func:`default_upsample` for which a config gets.
    """

    def __init__(
        self,
        z_dim: int,
        channels: int,
        image_size: int,
        width: int,
        num_classes: int,
        upsample: Upsample,
    ) -> None:
        super().__init__()
        self.base, stages = layout(image_size)
        widths = _widths(width, stages)
        self.stem = nn.Linear(z_dim, widths[0] * self.base * self.base)
        self.norms = nn.ModuleList([ConditionalBatchNorm2d(widths[0], num_classes)])
        self.ups = nn.ModuleList()
        for c_in, c_out in zip(widths[:-1], widths[1:], strict=True):
            # Bias-free: the following batch norm would cancel it.
            if upsample == "transposed":
                up: nn.Module = nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=False)
            else:
                up = nn.Sequential(
                    nn.Upsample(scale_factor=2, mode="nearest"),
                    nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                )
            self.ups.append(up)
            self.norms.append(ConditionalBatchNorm2d(c_out, num_classes))
        self.out = nn.Conv2d(widths[-1], channels, 3, padding=1)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.stem(z).view(z.shape[0], -1, self.base, self.base)
        h = torch.relu(self.norms[0](h, y))
        for up, norm in zip(self.ups, self.norms[1:], strict=True):
            h = torch.relu(norm(up(h), y))
        return torch.tanh(self.out(h))


class ProjectionDiscriminator(nn.Module):
    """x: (b, c, s, s), y: (b,) → logits (b,). ``spectral=False`` gives the WGAN-GP critic."""

    def __init__(
        self, channels: int, image_size: int, width: int, num_classes: int, spectral: bool
    ) -> None:
        super().__init__()

        def sn(module: nn.Module) -> nn.Module:
            return spectral_norm(module) if spectral else module

        _, stages = layout(image_size)
        widths = _widths(width, stages)[::-1]
        layers: list[nn.Module] = [sn(nn.Conv2d(channels, widths[0], 3, padding=1))]
        for c_in, c_out in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.LeakyReLU(0.1), sn(nn.Conv2d(c_in, c_out, 4, stride=2, padding=1))]
        layers.append(nn.LeakyReLU(0.1))
        self.body = nn.Sequential(*layers)
        self.linear = sn(nn.Linear(widths[-1], 1))
        self.embed = sn(nn.Embedding(num_classes, widths[-1])) if num_classes else None

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.body(x).sum(dim=(2, 3))  # global sum pooling: (b, c)
        out = self.linear(h).squeeze(1)
        if self.embed is not None:
            out = out + (self.embed(y) * h).sum(dim=1)  # projection term <embed(y), h>
        return out


class VanillaGenerator(nn.Module):
    """[z, onehot(y)] → fc → transposed convs. z: (b, z_dim), y: (b,) → (b, c, s, s)."""

    def __init__(
        self, z_dim: int, channels: int, image_size: int, width: int, num_classes: int
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.base, stages = layout(image_size)
        widths = _widths(width, stages)
        self.fc = nn.Sequential(
            nn.Linear(z_dim + num_classes, widths[0] * self.base * self.base, bias=False),
            nn.BatchNorm1d(widths[0] * self.base * self.base),
            nn.ReLU(),
        )
        layers: list[nn.Module] = []
        for c_in, c_out in zip(widths[:-2], widths[1:-1], strict=True):
            layers += [
                nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(),
            ]
        layers += [nn.ConvTranspose2d(widths[-2], channels, 4, stride=2, padding=1), nn.Tanh()]
        self.convs = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.num_classes:
            z = torch.cat([z, nn.functional.one_hot(y, self.num_classes).to(z.dtype)], dim=1)
        return self.convs(self.fc(z).view(z.shape[0], -1, self.base, self.base))


class VanillaDiscriminator(nn.Module):
    """Conv discriminator on [x, onehot(y) planes]. x: (b, c, s, s), y: (b,) → logits (b,)."""

    def __init__(self, channels: int, image_size: int, width: int, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        base, stages = layout(image_size)
        widths = _widths(width, stages)[::-1]
        layers: list[nn.Module] = []
        c_in = channels + num_classes
        for c_out in widths[1:]:
            layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
            c_in = c_out
        layers += [nn.Flatten(), nn.Linear(c_in * base * base, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.num_classes:
            planes = nn.functional.one_hot(y, self.num_classes).to(x.dtype)
            x = torch.cat([x, planes[:, :, None, None].expand(-1, -1, *x.shape[2:])], dim=1)
        return self.net(x).squeeze(1)


class EnergyNet(nn.Module):
    """f(x): x (b, c, s, s) → (b, outputs); the energy of (x, y) is −f(x)[y]."""

    def __init__(self, channels: int, image_size: int, width: int, outputs: int) -> None:
        super().__init__()
        base, stages = layout(image_size)
        widths = _widths(width, stages)[::-1]
        layers: list[nn.Module] = [spectral_norm(nn.Conv2d(channels, widths[0], 3, padding=1))]
        for c_in, c_out in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.SiLU(), spectral_norm(nn.Conv2d(c_in, c_out, 4, stride=2, padding=1))]
        layers += [nn.SiLU(), nn.Flatten()]
        self.body = nn.Sequential(*layers)
        self.head = spectral_norm(nn.Linear(widths[-1] * base * base, outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))
