"""Generative adversarial network engine "gan": class-conditional, three variants.

References:
    Goodfellow et al. 2014, "Generative Adversarial Nets", arXiv:1406.2661
        — the minimax game eq. (1) and the non-saturating generator loss (§3).
    Radford, Metz & Chintala 2016, "Unsupervised Representation Learning with Deep
        Convolutional GANs", arXiv:1511.06434 — the DCGAN generator layout.
    Salimans et al. 2016, "Improved Techniques for Training GANs", arXiv:1606.03498
        — one-sided label smoothing (§3.4).
    Miyato et al. 2018, "Spectral Normalization for GANs", arXiv:1802.05957
        — spectral norm in D and the hinge loss (eq. 16-17 of their appendix).
    Miyato & Koyama 2018, "cGANs with Projection Discriminator", arXiv:1802.05637
        — D(x, y) = ψ(φ(x)) + yᵀVφ(x) (eq. 3).
    Gulrajani et al. 2017, "Improved Training of Wasserstein GANs", arXiv:1704.00028
        — the critic loss with gradient penalty (Algorithm 1, λ = 10, n_critic = 5).
    Yazıcı et al. 2019, "The Unusual Effectiveness of Averaging in GAN Training",
        arXiv:1806.04498 — samples from an exponential moving average of G.

Variants (networks in :mod:`models.engines.nets`):
    dcgan    DCGAN generator with conditional batch norm, projection discriminator with
             spectral norm, hinge loss. The default: the most stable of the three.
    vanilla  [z, onehot(y)] → FC → transposed-conv generator, conv discriminator on
             [x, label planes], binary cross-entropy with real targets smoothed to 0.9.
    wgan-gp  DCGAN generator, projection critic without normalisation, Wasserstein loss
             with gradient penalty, ``n_critic`` critic steps per generator step.

Notation: x: (b, c, s, s) float in [-1, 1]; y: (b,) int64; z: (b, z_dim) ~ N(0, I).
One training step is ``n_critic`` discriminator updates followed by one generator update.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the conventional alias
from torch import nn

from models.datasets import ImageDataset
from models.engine_options.gan import GANConfig, GANSampleOptions
from models.engines import distributed
from models.engines.base import Trained
from models.engines.nets import (
    Generator,
    ProjectionDiscriminator,
    VanillaDiscriminator,
    VanillaGenerator,
)
from models.engines.runtime import config as configs
from models.engines.runtime import (
    devices,
    finetune,
    numerics,
    pixels,
    sampling,
    scoring,
)
from models.engines.runtime.ema import EMA
from models.engines.runtime.engine import RuntimeEngine
from models.engines.runtime.run import TrainingRun

NAME = "gan"


def resolve_config(config: GANConfig, data_size: int | None) -> GANConfig:
    """Fill the derived fields: ``image_size`` from the data, ``width`` and ``upsample`` by
    image size and ``lr_g``, ``lr_d``, ``betas``, ``n_critic`` by variant, as declared with
    the options (:mod:`models.engine_options.gan`), which check every value."""
    return configs.resolve(config, data_size, engine=NAME)


def build_generator(config: GANConfig, channels: int, num_classes: int) -> nn.Module:
    """G(z, y): z (b, z_dim), y (b,) → (b, c, s, s). ``num_classes`` 0 = unconditional."""
    assert config.image_size is not None and config.width is not None, "resolve the config"
    assert config.upsample is not None, "resolve the config"
    if config.variant == "vanilla":
        return VanillaGenerator(
            config.z_dim, channels, config.image_size, config.width, num_classes
        )
    return Generator(
        config.z_dim, channels, config.image_size, config.width, num_classes, config.upsample
    )


def build_discriminator(config: GANConfig, channels: int, num_classes: int) -> nn.Module:
    """D(x, y): x (b, c, s, s), y (b,) → logits (b,)."""
    assert config.image_size is not None and config.width is not None, "resolve the config"
    if config.variant == "vanilla":
        return VanillaDiscriminator(channels, config.image_size, config.width, num_classes)
    spectral = config.variant == "dcgan"
    return ProjectionDiscriminator(
        channels, config.image_size, config.width, num_classes, spectral=spectral
    )


def discriminator_loss(
    variant: str, d_real: torch.Tensor, d_fake: torch.Tensor, smoothing: float
) -> torch.Tensor:
    """The D/critic loss from logits d_real (b,) and d_fake (b,); a scalar."""
    if variant == "dcgan":
        # Hinge: E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))]   (Miyato et al.)
        return F.relu(1.0 - d_real).mean() + F.relu(1.0 + d_fake).mean()
    if variant == "vanilla":
        # −log D(x) with the target smoothed to 0.9, −log(1 − D(G(z)))   (eq. 1, Salimans §3.4)
        real = F.binary_cross_entropy_with_logits(d_real, torch.full_like(d_real, smoothing))
        return real + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
    # Wasserstein critic: E[D(G(z))] − E[D(x)]   (Gulrajani et al., Algorithm 1 line 7)
    return d_fake.mean() - d_real.mean()


def generator_loss(variant: str, d_fake: torch.Tensor) -> torch.Tensor:
    """The G loss from logits d_fake (b,); a scalar."""
    if variant == "vanilla":
        # Non-saturating: −log D(G(z))   (Goodfellow et al. §3)
        return F.binary_cross_entropy_with_logits(d_fake, torch.ones_like(d_fake))
    return -d_fake.mean()


def gradient_penalty(
    critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, y: torch.Tensor, eps: torch.Tensor
) -> torch.Tensor:
    """E[(‖∇D(x̂)‖₂ − 1)²] with x̂ = εx + (1 − ε)x̃, ε ~ U[0, 1] per sample (Gulrajani
    et al., Algorithm 1 lines 6-7). real, fake: (b, c, s, s); y: (b,); eps: (b, 1, 1, 1).
    A scalar."""
    x_hat = torch.lerp(fake, real, eps).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat, y).sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1.0) ** 2).mean()


class _Run(TrainingRun[GANConfig]):
    """A gan training run: G, D, the EMA of G and their optimisers."""

    engine = NAME
    # Only D sees real images; G learns from D's outputs alone (post-processing), so its
    # step costs no ε and is not charged (Opacus issue #418).
    private_module, private_optimizer, private_name = "d", "opt_d", "discriminator"

    def private_steps(self) -> int:
        assert self.config.n_critic is not None, "resolve the config"
        return self.config.max_steps * self.config.n_critic

    def build(self, data: ImageDataset) -> None:
        config, device = self.config, self.device
        self.num_labels = data.num_classes if config.conditional else 1
        assert config.lr_g is not None and config.lr_d is not None and config.betas is not None
        channels = data.image_shape[0]
        num_classes = data.num_classes if config.conditional else 0
        # Data-parallel, batch norm takes its statistics over the global batch.
        g = distributed.sync_batch_norm(build_generator(config, channels, num_classes))
        d = distributed.sync_batch_norm(build_discriminator(config, channels, num_classes))
        g, d = g.to(device), d.to(device)
        self.g = devices.channels_last(g, device).train()
        self.d = devices.channels_last(d, device).train()
        self.ema = EMA(self.g, config.ema_decay)
        betas = (config.betas[0], config.betas[1])
        fused = device.type == "cuda"
        self.opt_g = torch.optim.Adam(self.g.parameters(), config.lr_g, betas, fused=fused)
        self.opt_d = torch.optim.Adam(self.d.parameters(), config.lr_d, betas, fused=fused)
        self.hint = (
            f"lower lr_d and lr_g (now {config.lr_d:g} and {config.lr_g:g}) or use variant "
            "'dcgan', whose spectral norm and hinge loss are the most stable"
        )

    def _real(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The next minibatch (this rank's rows): x (b, c, s, s) in [-1, 1] and y (b,) on
        the device."""
        index = self.order.next_indices()[self.rows]
        x = pixels.to_unit_range(self.images[index].to(self.device, non_blocking=True))
        y = self.labels[index] if self.config.conditional else torch.zeros_like(index)
        return devices.channels_last(x, self.device), y.to(self.device)

    def _fake(self, y: torch.Tensor) -> torch.Tensor:
        """G(z, y) for z ~ N(0, I): (b, c, s, s); z drawn for the whole batch, every rank
        keeping its rows (a private batch's size is its own: Poisson-sampled)."""
        z = self._draw(torch.randn, self.config.z_dim, batch=len(y) if self.private else None)
        return self.g(z, y)

    def _draw(
        self, sample: Callable[..., torch.Tensor], *shape: int, batch: int | None = None
    ) -> torch.Tensor:
        """``sample`` (torch.randn, torch.rand) of (batch or batch_size, *shape) from the
        run's generator: this rank's rows."""
        size = self.config.batch_size if batch is None else batch
        full = sample((size, *shape), generator=self.generator, device=self.device)
        return full[self.rows]

    def _generator_labels(self, y: torch.Tensor) -> torch.Tensor:
        """The labels of G's step: the last real batch's, or on a private run labels drawn
        uniformly (the real ones are private data, and G's step pays no ε)."""
        if self.private is None:
            return y
        b = self.config.batch_size
        return torch.randint(0, self.num_labels, (b,), generator=self.generator, device=self.device)

    def train_step(self) -> dict[str, float]:
        cfg, variant = self.config, self.config.variant
        assert cfg.n_critic is not None
        step = self.step + 1
        terms: dict[str, float] = {}
        # 1. n_critic discriminator updates on real (x, y) and fakes G(z, y) of the same
        #    labels, so D judges each image against the class it claims.
        #    A private D step is DP-SGD: each real example's gradient (with that of the
        #    fake paired with it) clipped, noise added; an empty batch is noise alone.
        self.d.requires_grad_(True)
        loss_d: torch.Tensor | None = None
        norm_d: torch.Tensor | None = None
        for _ in range(cfg.n_critic):
            x, y = self._real()
            if self.private is not None and len(y) == 0:
                self.private.empty_batch()
                self.opt_d.step()
                loss_d = None
                continue
            with torch.no_grad(), devices.autocast(self.device):
                fake = self._fake(y)
            with devices.autocast(self.device):
                d_real, d_fake = self.d(x, y).float(), self.d(fake, y).float()
            loss_d = discriminator_loss(variant, d_real, d_fake, cfg.label_smoothing)
            if variant == "wgan-gp":
                # Outside autocast: the penalty differentiates a gradient, bf16 is too coarse.
                eps = self._draw(torch.rand, 1, 1, 1)
                gp = gradient_penalty(self.d, x, fake.float(), y, eps)
                numerics.check_finite("the gradient penalty", gp, self.hint, step=step)
                terms["gp"] = float(gp.detach())
                loss_d = loss_d + cfg.gp_weight * gp
            numerics.check_finite("the discriminator loss loss_d", loss_d, self.hint, step=step)
            norm_d = self._update(loss_d, self.d, self.opt_d)
        # 2. one generator update through the frozen D, on the last batch's labels (on a
        #    private run, labels drawn uniformly, and D's hooks off: G pays no ε).
        self.d.requires_grad_(False)
        y = self._generator_labels(y)
        passive = self.private.passive() if self.private else contextlib.nullcontext()
        with passive:
            with devices.autocast(self.device):
                loss_g = generator_loss(variant, self.d(self._fake(y), y).float())
            numerics.check_finite("the generator loss loss_g", loss_g, self.hint, step=step)
            norm_g = self._update(loss_g, self.g, self.opt_g)
        # 3. θ_ema ← decay·θ_ema + (1 − decay)·θ_G   (Yazıcı et al.)
        self.ema.update(self.g)
        self.step = step
        if loss_d is None:  # the last D step's private batch was empty
            terms = {"loss_g": float(loss_g.detach())}
        else:
            terms = {"loss_d": float(loss_d.detach()), "loss_g": float(loss_g.detach()), **terms}
            self.recent.append(terms)
        # Diagnostics for the training curves, kept out of the averaged model metrics. A
        # private D's gradient norm (unclipped, noise-free) is not private: not reported.
        norms = {"grad_norm_g": float(norm_g)}
        if norm_d is not None and self.private is None:
            norms = {"grad_norm_d": float(norm_d), **norms}
        return {**terms, "lr_d": cfg.lr_d, "lr_g": cfg.lr_g, **norms}

    def _update(
        self, loss: torch.Tensor, net: nn.Module, optimizer: torch.optim.Optimizer
    ) -> torch.Tensor:
        """One optimiser step of ``net`` on ``loss`` (gradients averaged over the ranks);
        the gradient norm before the step."""
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.shard.average_gradients(net)
        norm = numerics.grad_norm(net)
        optimizer.step()
        return norm

    def stateful(self) -> dict[str, Any]:
        return {"g": self.g, "d": self.d, "ema": self.ema, "opt_g": self.opt_g, "opt_d": self.opt_d}


class GANEngine(RuntimeEngine[GANConfig]):
    """The "gan" engine (see the module docstring for the maths).

    ``train`` reports ``progress(step, max_steps, loss_d=.., loss_g=..[, gp=..], lr_d=..,
    lr_g=.., grad_norm_d=.., grad_norm_g=..)``; the trained model keeps the EMA generator
    and D (for fine-tuning; sampling uses the generator alone).
    """

    name = NAME
    options = GANConfig
    run_class = _Run
    sampler_module = "generator"
    sampling = GANSampleOptions

    def trained_modules(self, run: _Run) -> dict[str, nn.Module]:
        return {"generator": run.ema.averaged, "discriminator": run.d}

    def start_from(self, run: _Run, directory: Path, data: ImageDataset) -> None:
        # D too when the parent saved it.
        targets = {"generator": [run.g, run.ema.averaged], "discriminator": [run.d]}
        finetune.init_weights(NAME, directory, data, targets, frozenset({"discriminator"}))

    def build_sampler(self, config: GANConfig, channels: int, num_classes: int) -> nn.Module:
        return build_generator(config, channels, num_classes if config.conditional else 0)

    def optional_modules(self) -> dict[str, Callable[[GANConfig, int, int], nn.Module]]:
        # D when the files hold it, for the membership attack: ``modules`` as training
        # left them.
        return {"discriminator": self._build_discriminator}

    def _build_discriminator(self, config: GANConfig, channels: int, num_classes: int) -> nn.Module:
        return build_discriminator(config, channels, num_classes if config.conditional else 0)

    white_box_attack = "discriminator logit D(x, y)"

    def membership_scores(
        self,
        trained: Trained,
        images: torch.Tensor,
        labels: torch.Tensor,
        *,
        seed: int,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> np.ndarray | None:
        """D(x, y) of each candidate: D was trained to score the training images as real,
        and overfits to them first (Hayes et al. 2019, "LOGAN: Membership Inference Attacks
        Against Generative Models", the white-box attack). None for a model saved
        without D.

        Under the candidate's label (zeros when unconditional), in eval mode (spectral
        norm's power iteration stays put) and float32. Deterministic: ``seed`` is unused.
        images uint8 (n, c, h, w), labels int64 (n,) → float64 (n,).
        """
        d = trained.modules.get("discriminator")
        if d is None:
            return None
        cfg = self.saved_config(trained.config)
        d = d.eval().requires_grad_(False)
        device = next(d.parameters()).device
        images, labels = scoring.candidates(trained, images, labels, conditional=cfg.conditional)
        scores = np.empty(len(images), dtype=np.float64)
        with torch.inference_mode():
            for rows, x, y in scoring.batches(images, labels, device, should_stop):
                scores[rows] = d(x, y).double().cpu().numpy()
        return scores

    @torch.inference_mode()
    def draw(self, trained: Trained, config: GANConfig, want: sampling.Draw) -> torch.Tensor:
        """Draw ``n`` images: uint8 (n, c, h, w) on CPU, from the EMA generator.

        opts: batch_size (256); progress(done, total) after each batch; should_stop()
            polled before each batch.
        The same (n, labels, seed) on the same device gives identical images, whatever
        the batch size: every z is drawn up front from a generator seeded with ``seed``.
        """
        n, labels, seed, opts = want.n, want.labels, want.seed, want.opts
        batch_size = opts.get("batch_size", 256)
        sampling.check_positive_int("batch_size", batch_size)
        g = trained.modules["generator"].eval()
        device = next(g.parameters()).device
        generator = torch.Generator(device=device).manual_seed(seed)
        # 1. z ~ N(0, I): (n, z_dim); 2. x = G_ema(z, y) batch by batch.
        z = torch.randn((n, config.z_dim), generator=generator, device=device)
        y_all = (labels if labels is not None else torch.zeros(n, dtype=torch.int64)).to(device)
        out = torch.empty((n, *trained.image_shape), dtype=torch.uint8)
        ticks = sampling.SampleProgress(opts, math.ceil(n / batch_size), "batches")
        with devices.autocast(device):
            for part in sampling.iter_batches(n, batch_size):
                ticks.check_stop()
                out[part] = pixels.to_uint8(g(z[part], y_all[part]))
                ticks.tick()
        return out


ENGINE = GANEngine()
