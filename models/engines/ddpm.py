"""Denoising diffusion engine "ddpm": a class-conditional UNet that predicts the noise.

References:
    Ho, Jain & Abbeel 2020, "Denoising Diffusion Probabilistic Models", arXiv:2006.11239
        — forward process eq. (4), posterior q(x_{t-1} | x_t, x_0) eqs. (6)-(7),
        the simple loss eq. (14) (Algorithm 1), ancestral sampling (Algorithm 2).
    Song, Meng & Ermon 2021, "Denoising Diffusion Implicit Models", arXiv:2010.02502
        — the predicted x_0 eq. (9), the generalised update eq. (12), σ_t(η) eq. (16).
    Ho & Salimans 2022, "Classifier-Free Diffusion Guidance", arXiv:2207.12598
        — label dropout in training (Algorithm 1), the guided noise estimate eq. (6).
    Carlini et al. 2023, "Extracting Training Data from Diffusion Models", arXiv:2301.13188;
    Hu & Pang 2023, "Loss and Likelihood Based Membership Inference of Diffusion Models"
        — membership inference from the loss eq. (14) at intermediate timesteps.

Notation: ᾱ_t = ∏_{s<=t} (1 - β_s); images x: (b, c, h, w) float in [-1, 1]; labels
y: (b,) int64 where the extra index ``num_classes`` is the null label ∅ used for
classifier-free guidance. The network is diffusers' ``UNet2DModel`` with a class
embedding added to the time embedding; the noise schedule comes from diffusers'
``DDPMScheduler``; the training and sampling loops are ours.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the conventional alias
from diffusers import DDPMScheduler, UNet2DModel

from models.datasets import ImageDataset
from models.engine_options.ddpm import DDPMConfig, DDPMSampleOptions
from models.engines import accel, ddpm_sampling, ddpm_scores, ddpm_solvers
from models.engines.base import EngineError, Trained
from models.engines.runtime import config as configs
from models.engines.runtime import devices, finetune, numerics, pixels, sampling, scoring
from models.engines.runtime.ema import EMA
from models.engines.runtime.engine import RuntimeEngine
from models.engines.runtime.run import TrainingRun

NAME = "ddpm"

SUPPORTED_IMAGE_SIZES = DDPMConfig.IMAGE_SIZES


def size_defaults(image_size: int) -> DDPMConfig:
    """The UNet and optimiser a config gets when it names none, by image size (declared
    with the options, :mod:`models.engine_options.ddpm`)."""
    return DDPMConfig().resolved(image_size)


def resolve_config(config: DDPMConfig, data_size: int | None) -> DDPMConfig:
    """Fill the data-derived fields (:func:`models.engines.runtime.config.resolve`)."""
    return configs.resolve(config, data_size, engine=NAME)


def build_unet(config: DDPMConfig, channels: int, num_classes: int) -> UNet2DModel:
    """The noise predictor ε_θ(x_t, t, y): x_t (b, c, s, s), t (b,), y (b,) -> (b, c, s, s).

    One resolution level per entry of ``channel_mult``; self-attention at the lowest one
    (and in the middle block) when ``attention``; ``num_classes + 1`` class embeddings,
    the last being ∅, when ``conditional``.
    """
    assert config.channel_mult is not None, "resolve the config first"
    widths = tuple(config.base_channels * m for m in config.channel_mult)
    down = ["DownBlock2D"] * len(widths)
    up = ["UpBlock2D"] * len(widths)
    if config.attention:
        down[-1], up[0] = "AttnDownBlock2D", "AttnUpBlock2D"
    return UNet2DModel(
        sample_size=config.image_size,
        in_channels=channels,
        out_channels=channels,
        block_out_channels=widths,
        down_block_types=tuple(down),
        up_block_types=tuple(up),
        layers_per_block=config.layers_per_block,
        norm_num_groups=config.norm_groups,
        attention_head_dim=8,
        add_attention=config.attention,
        num_class_embeds=num_classes + 1 if config.conditional else None,
    )


def alphas_cumprod(config: DDPMConfig) -> torch.Tensor:
    """ᾱ_t for t = 0..T-1, float64 (T,), from diffusers' DDPMScheduler (same β's)."""
    scheduler = DDPMScheduler(
        num_train_timesteps=config.num_train_timesteps,
        beta_schedule=ddpm_solvers.BETA_SCHEDULES[config.beta_schedule],
    )
    return scheduler.alphas_cumprod.to(torch.float64)


class _Run(TrainingRun[DDPMConfig]):
    """A ddpm training run: the UNet, its EMA, the optimiser and the noise schedule."""

    engine = NAME
    private_module, private_name = "model", "unet"  # the whole UNet sees the real images

    def build(self, data: ImageDataset) -> None:
        config, device = self.config, self.device
        self.null_label = data.num_classes
        model = build_unet(config, data.image_shape[0], data.num_classes).to(device)
        self.model = devices.channels_last(model, device).train()
        # The model itself on CPU, and when private: Opacus's hooks are on its layers.
        private = config.privacy is not None
        self.unet = self.model if private else accel.compiled(self.model, device)
        self.ema = EMA(self.model, config.ema_decay)
        self.optimizer = torch.optim.Adam(
            self.model.parameters(), lr=config.lr, fused=device.type == "cuda"
        )
        ab = alphas_cumprod(config).to(device=device, dtype=torch.float32)
        self.sqrt_ab, self.sqrt_one_minus_ab = ab.sqrt(), (1.0 - ab).sqrt()
        default_lr = size_defaults(config.image_size).lr
        self.hint = (
            f"lower lr (now {config.lr:g}; the default at {config.image_size} px is "
            f"{default_lr:g}) and keep grad_clip > 0"
        )

    def train_step(self) -> dict[str, float]:
        """One step of Algorithm 1 (Ho et al.) with label dropout (Ho & Salimans).

        Returns the loss as ``{"loss": value}``.
        """
        cfg, device, generator = self.config, self.device, self.generator
        # 1. x_0 ~ q(x_0), t ~ U{0..T-1}, ε ~ N(0, I); labels replaced by ∅ with p_uncond.
        #    Every rank draws the whole batch's t, ε and dropout, then keeps its rows. A
        #    private batch is Poisson-sampled: b varies, and may be 0 (noise alone).
        batch, rows = self.order.next_indices(), self.rows
        b, index = len(batch), batch[rows]
        if self.private is not None and b == 0:
            return self._noise_only_step()
        # Move uint8 and convert on the device: a quarter of the bytes of float32.
        x0 = pixels.to_unit_range(self.images[index].to(device, non_blocking=True))
        x0 = devices.channels_last(x0, device)
        t = torch.randint(0, cfg.num_train_timesteps, (b,), generator=generator, device=device)
        noise = torch.randn((b, *x0.shape[1:]), generator=generator, device=device)
        t, noise = t[rows], noise[rows]
        y = None
        if cfg.conditional:
            drop = torch.rand(b, generator=generator, device=device)[rows] < cfg.cfg_dropout
            y = self.labels[index].to(device).masked_fill(drop, self.null_label)
        # 2. x_t = √ᾱ_t x_0 + √(1-ᾱ_t) ε   (eq. 4)
        x_t = (
            self.sqrt_ab[t, None, None, None] * x0
            + self.sqrt_one_minus_ab[t, None, None, None] * noise
        )
        # 3. gradient step on ‖ε - ε_θ(x_t, t, y)‖²   (eq. 14), lr warmed up linearly
        with devices.autocast(device):
            predicted = self.unet(x_t, t, class_labels=y, return_dict=False)[0]
        loss = F.mse_loss(predicted.float(), noise)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.private is not None:
            # DP-SGD clips each example's gradient to max_grad_norm instead (the batch's
            # gradient norm, unclipped and noise-free, is not reported: it is not private).
            lr = self._step_optimizer()
            value = float(loss.detach())
            numerics.check_finite("the diffusion loss", value, self.hint, step=self.step)
            self.recent.append({"loss": value})
            return {"loss": value, "lr": lr}
        self.shard.average_gradients(self.model)
        if cfg.grad_clip > 0:
            norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        else:
            norm = numerics.grad_norm(self.model)
        lr = self._step_optimizer()
        # Loss and norm are read once the whole step is queued: one wait for the GPU per
        # step instead of three. A non-finite one has then been applied, but the run ends
        # here and nothing of that step is kept (no checkpoint, no result).
        value, norm_value = float(loss.detach()), float(norm)
        numerics.check_finite("the diffusion loss", value, self.hint, step=self.step)
        if cfg.grad_clip > 0:
            numerics.check_finite("the gradient norm", norm_value, self.hint, step=self.step)
        self.recent.append({"loss": value})
        # grad_norm is the norm before clipping: what tells a user that lr is too high.
        return {"loss": value, "lr": lr, "grad_norm": norm_value}

    def _step_optimizer(self) -> float:
        """The optimiser step at the warmed-up learning rate, then the EMA; ``step`` + 1.
        Returns the learning rate."""
        cfg = self.config
        warmup = min(1.0, (self.step + 1) / cfg.warmup_steps) if cfg.warmup_steps else 1.0
        for group in self.optimizer.param_groups:
            group["lr"] = cfg.lr * warmup
        self.optimizer.step()
        self.ema.update(self.model)
        self.step += 1
        return cfg.lr * warmup

    def _noise_only_step(self) -> dict[str, float]:
        """A private step on an empty Poisson batch: the update is the noise alone."""
        assert self.private is not None
        self.private.empty_batch()
        return {"lr": self._step_optimizer()}

    def stateful(self) -> dict[str, Any]:
        return {"model": self.model, "ema": self.ema, "optimizer": self.optimizer}


GUIDANCE_CANDIDATES = (1.0, 1.5, 2.0, 3.0)
"""The guidance scales a scored run tries on its kept weights (1: none)."""


class DDPMEngine(RuntimeEngine[DDPMConfig]):
    """The "ddpm" engine (see the module docstring for the maths).

    ``train`` reports ``progress(step, max_steps, loss=.., lr=.., grad_norm=..)``; the
    trained model keeps the EMA UNet.
    """

    name = NAME
    options = DDPMConfig
    run_class = _Run
    sampler_module = "unet"
    sampling = DDPMSampleOptions
    # A scored run chooses its guidance on its kept weights: the best scale was found only
    # by sweeping after training before (BENCHMARKS.md, "ddpm at 28 px").
    tuned_defaults = {"sample_guidance_scale": ("guidance_scale", GUIDANCE_CANDIDATES)}

    def tunes(
        self, named: DDPMConfig, trained: Trained
    ) -> dict[str, tuple[str, tuple[float, ...]]]:
        # Guidance needs labels: an unconditional model has nothing to choose.
        return super().tunes(named, trained) if trained.config["conditional"] else {}

    def check_sample(self, cfg: DDPMConfig, opts: Mapping[str, Any]) -> None:
        # The class bounds steps for every model; this model's schedule has T of them.
        steps, most = opts.get("steps"), cfg.num_train_timesteps
        if "steps" in opts and (type(steps) is not int or not 1 <= steps <= most):
            raise EngineError(f"steps must be an integer in [1, {most}], got {steps!r}")

    def scoring_options(self, cfg: DDPMConfig) -> dict[str, Any]:
        # 20 DDIM steps, not the 50 a generate job takes: an evaluation costs 2.5x less
        # (BENCHMARKS.md, "Keep-best") and the weights and scales rank alike.
        return {"steps": min(20, cfg.num_train_timesteps)}

    def trained_modules(self, run: _Run) -> dict[str, torch.nn.Module]:
        return {"unet": run.ema.averaged}

    def start_from(self, run: _Run, directory: Path, data: ImageDataset) -> None:
        # The EMA starts at the parent too.
        finetune.init_weights(NAME, directory, data, {"unet": [run.model, run.ema.averaged]})

    def build_sampler(self, config: DDPMConfig, channels: int, num_classes: int) -> UNet2DModel:
        return build_unet(config, channels, num_classes)

    # ------------------------------------------------------------------ membership

    white_box_attack = (
        "noise-prediction loss −‖ε − ε_θ(x_t, t, y)‖² at t = "
        + ", ".join(f"{share:.0%}" for share in ddpm_scores.TIMESTEPS)
        + f" of the schedule, {ddpm_scores.DRAWS} noise draws each"
    )

    def membership_scores(
        self,
        trained: Trained,
        images: torch.Tensor,
        labels: torch.Tensor,
        *,
        seed: int,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> np.ndarray:
        """−(the training loss of each candidate): a model predicts the noise of the
        images it was fitted to better than that of others (Carlini et al.; Hu & Pang).

        :func:`.ddpm_scores.loss_scores` with the model's own ᾱ; images uint8 (n, c, h,
        w), labels int64 (n,) → float64 (n,).
        """
        cfg = self.saved_config(trained.config)
        images, labels = scoring.candidates(trained, images, labels, conditional=cfg.conditional)
        return ddpm_scores.loss_scores(
            trained.modules["unet"],
            alphas_cumprod(cfg),
            images,
            labels if cfg.conditional else None,
            seed=seed,
            should_stop=should_stop,
        )

    # ------------------------------------------------------------------ sampling

    def draw(self, trained: Trained, config: DDPMConfig, want: sampling.Draw) -> torch.Tensor:
        """Draw ``n`` images (:func:`.ddpm_sampling.draw`), uint8 (n, c, h, w) on CPU."""
        return ddpm_sampling.draw(trained, config, want, alphas_cumprod(config))


ENGINE = DDPMEngine()
