"""Energy-based model engine "ebm": a class-conditional energy sampled by Langevin dynamics.

References:
    Du & Mordatch 2019, "Implicit Generation and Generalization in Energy-Based Models",
        arXiv:1903.08689 — Langevin sampling with clipped gradients (eq. 2, §3.1), the
        replay buffer of persistent chains reinitialised from noise 5% of the time
        (§3.1), spectral norm, and the energy-magnitude regulariser α(E+² + E−²) (§3.3).
    Grathwohl et al. 2020, "Your Classifier is Secretly an Energy Based Model and You
        Should Treat it Like One" (JEM), arXiv:1912.03263 — logits f(x) define
        p(x, y) ∝ exp(f(x)[y]), so E(x, y) = −f(x)[y] and p(y | x) = softmax(f(x)) (eq. 5-8).

Notation: x: (b, c, s, s) float in [-1, 1]; y: (b,) int64; f(x): (b, k) with k the number
of classes (1 when ``conditional`` is false: E(x) = −f(x)[0]).

Training step (one optimiser update):
    1. x+, y+ from the data, plus N(0, data_noise²) so the energy is smooth around it.
    2. x0, y− from the replay buffer; each entry is replaced by U[-1, 1] noise (with a
       uniform label) with probability ``reinit_prob``.
    3. x− = ``langevin_steps`` steps of x ← clamp(x − λ·clip(∇ₓE(x, y−)) + σ·ε, −1, 1)
       with λ = step_size, σ = noise, the network frozen; x−, y− go back into the buffer.
    4. loss = E(x+, y+) − E(x−, y−) + α(E(x+, y+)² + E(x−, y−)²) + w·CE(f(x+), y+):
       the contrastive divergence gradient of −log p(x, y), the regulariser, and the
       −log p(y | x) term of the same joint (JEM's factorisation log p(x) + log p(y | x)),
       which sharpens what each class's energy responds to.
    5. θ_ema ← d·θ_ema + (1 − d)·θ with d = ``ema_decay`` (0: θ_ema = θ).
Sampling runs step 3 on the averaged energy θ_ema from uniform noise for ``steps`` steps.
Contrastive divergence does not settle: at 28 px the last weights' samples swing from one
few hundred steps to the next (label agreement 0.50 at step 1,000 of one run, 0.96 at
2,000, 0.32 at 2,500), so from 28 px what samples is the weights' average (Polyak
averaging, as the ddpm and gan engines sample theirs): 0.63 at step 500 where the last
weights drew noise, 0.965 at 2,000 with a Fréchet distance a fifth of theirs, 0.985 at
2,500 where they scored 0.32. It slows the drift; it does not stop it (0.82 at 3,000;
BENCHMARKS.md, "ebm at 28 px").
The sampling chains are several times a training chain, as the buffer's chains are many
training steps old. How many is a default by image size (:mod:`models.engine_options.ebm`):
60 at 16 px, where far longer chains of a persistently trained EBM drift to a few
oversaturated images per class (Nijkamp et al. 2020, "On the Anatomy of MCMC-Based
Maximum Likelihood Learning of Energy-Based Models", arXiv:1903.12370); 400 from 28 px,
where 60 or 100 steps from noise still leave noise in the background (label agreement
0.10 and 0.15 on MNIST where 400 gave 0.77).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the conventional alias
from torch import nn
from torch.nn.utils import parametrize

from models.datasets import ImageDataset
from models.engine_options.ebm import EBMConfig, EBMSampleOptions
from models.engines import accel
from models.engines.base import Trained
from models.engines.nets import EnergyNet
from models.engines.runtime import config as configs
from models.engines.runtime import devices, numerics, pixels, sampling, scoring
from models.engines.runtime.ema import EMA
from models.engines.runtime.engine import RuntimeEngine
from models.engines.runtime.run import TrainingRun

NAME = "ebm"


def resolve_config(config: EBMConfig, data_size: int | None) -> EBMConfig:
    """Fill the derived fields: ``image_size`` from the data, ``width`` and ``buffer_size``
    by image size, as declared with the options (:mod:`models.engine_options.ebm`), which
    check every value."""
    return configs.resolve(config, data_size, engine=NAME)


def build_energy(config: EBMConfig, channels: int, num_classes: int) -> EnergyNet:
    """f(x): (b, c, s, s) → (b, num_classes), or (b, 1) when unconditional."""
    assert config.image_size is not None and config.width is not None, "resolve the config"
    outputs = num_classes if config.conditional else 1
    return EnergyNet(channels, config.image_size, config.width, outputs)


def energy(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """E(x, y) = −f(x)[y]: x (b, c, s, s), y (b,) → (b,)."""
    return -net(x).float().gather(1, y[:, None]).squeeze(1)


def langevin(
    net: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    steps: int,
    step_size: float,
    noise: float,
    grad_clip: float,
    generator: torch.Generator,
    on_step: Callable[[], None] | None = None,
) -> torch.Tensor:
    """Run ``steps`` steps of x ← clamp(x − λ·clip(∇ₓE(x, y)) + σ·ε, −1, 1), ε ~ N(0, I)
    (Du & Mordatch eq. 2 with the gradient clipped per pixel). x: (b, c, s, s) → same.

    Only x takes gradients: the caller freezes ``net`` (``requires_grad_(False)``, eval
    mode so spectral norm's power iteration stays put). Its normalised weights are
    computed once for the whole chain (``parametrize.cached``).
    """
    with torch.inference_mode(False), torch.enable_grad(), parametrize.cached():
        # Clones are ordinary tensors even when the caller is in inference mode.
        x, y = x.clone(), y.clone()
        for _ in range(steps):
            x.requires_grad_(True)
            with devices.autocast(x.device):
                e = energy(net, x, y).sum()  # the samples are independent: ∇ of the sum
            (grad,) = torch.autograd.grad(e, x)
            eps = torch.randn(x.shape, generator=generator, device=x.device)
            x = (x.detach() - step_size * grad.clamp(-grad_clip, grad_clip) + noise * eps).clamp(
                -1.0, 1.0
            )
            if on_step is not None:
                on_step()
    return x


class _Run(TrainingRun[EBMConfig]):
    """An ebm training run: the energy network, its optimiser and the replay buffer."""

    engine = NAME

    def build(self, data: ImageDataset) -> None:
        config, device = self.config, self.device
        assert config.buffer_size is not None
        self.num_labels = data.num_classes if config.conditional else 1
        net = build_energy(config, data.image_shape[0], data.num_classes).to(device)
        self.net = devices.channels_last(net, device).train()
        assert config.ema_decay is not None, "resolve the config"
        # warmup 2: the mean of all weights so far until ema_decay caps it. At 28 px the
        # mean of the first 500 steps drew digits (0.63) where the last weights and the
        # usual warm-up (a span of k / 9 steps) drew noise (0.10; BENCHMARKS.md).
        self.ema = EMA(self.net, config.ema_decay, warmup=2)
        self.optimizer = torch.optim.Adam(
            self.net.parameters(),
            lr=config.lr,
            betas=(config.betas[0], config.betas[1]),
            fused=device.type == "cuda",
        )
        # The replay buffer: persistent chains x (buffer_size, c, s, s) and their labels.
        shape = (config.buffer_size, *self.images.shape[1:])
        self.buffer = self._uniform(shape)
        self.buffer_labels = self._random_labels(config.buffer_size)
        self.hint = (
            f"lower lr (now {config.lr:g}) or step_size (now {config.step_size:g}), or raise "
            f"alpha (now {config.alpha:g}) to keep the energies small"
        )

    def _uniform(self, shape: tuple[int, ...]) -> torch.Tensor:
        """U[-1, 1] noise of ``shape``, the chains' starting point."""
        return torch.rand(shape, generator=self.generator, device=self.device) * 2 - 1

    def _random_labels(self, n: int) -> torch.Tensor:
        return torch.randint(0, self.num_labels, (n,), generator=self.generator, device=self.device)

    def train_step(self) -> dict[str, float]:
        cfg, device, step = self.config, self.device, self.step + 1
        b = cfg.batch_size
        chain_steps, grad_clip = cfg.langevin_steps, cfg.grad_clip
        assert chain_steps is not None and grad_clip is not None, "resolve the config"
        # 1. x+ ~ data (+ small Gaussian noise), y+ its labels.
        index = self.order.next_indices()
        x_pos = pixels.to_unit_range(accel.gather(self.images, index, device))
        x_pos = x_pos + cfg.data_noise * torch.randn(
            x_pos.shape, generator=self.generator, device=device
        )
        y_pos = self.labels[index].to(device) if cfg.conditional else torch.zeros_like(index)
        y_pos = y_pos.to(device)
        # 2. chains from the buffer (distinct entries, so writing back is order-free);
        #    reinit_prob of them restart from noise with a fresh label.
        slots = torch.randperm(cfg.buffer_size, generator=self.generator, device=device)[:b]
        x0, y_neg = self.buffer[slots], self.buffer_labels[slots]
        fresh = torch.rand(b, generator=self.generator, device=device) < cfg.reinit_prob
        x0 = torch.where(fresh[:, None, None, None], self._uniform(x0.shape), x0)
        y_neg = torch.where(fresh, self._random_labels(b), y_neg)
        # 3. x− by Langevin dynamics on the frozen energy.
        self.net.eval().requires_grad_(False)
        x_neg = langevin(
            self.net,
            devices.channels_last(x0, device),
            y_neg,
            steps=chain_steps,
            step_size=cfg.step_size,
            noise=cfg.noise,
            grad_clip=grad_clip,
            generator=self.generator,
        )
        self.net.train().requires_grad_(True)
        self.buffer[slots], self.buffer_labels[slots] = x_neg.contiguous(), y_neg
        # 4. one forward pass over [x+; x−] (one spectral-norm power iteration per step).
        with devices.autocast(device):
            logits = self.net(torch.cat([x_pos, x_neg])).float()
        e_both = -logits.gather(1, torch.cat([y_pos, y_neg])[:, None]).squeeze(1)
        e_pos, e_neg = e_both[:b].mean(), e_both[b:].mean()
        reg = cfg.alpha * (e_both[:b].pow(2).mean() + e_both[b:].pow(2).mean())
        loss = e_pos - e_neg + reg
        terms = {"e_pos": float(e_pos.detach()), "e_neg": float(e_neg.detach())}
        terms["reg"] = float(reg.detach())
        if cfg.conditional and cfg.ce_weight > 0:
            ce = F.cross_entropy(logits[:b], y_pos)
            terms["ce"] = float(ce.detach())
            loss = loss + cfg.ce_weight * ce
        numerics.check_finite("the energy loss", loss, self.hint, step=step)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = numerics.grad_norm(self.net)
        lr = self._lr(step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.step()
        # 5. θ_ema ← decay·θ_ema + (1 − decay)·θ: what samples (the chains keep the live θ).
        self.ema.update(self.net)
        self.step = step
        terms = {"loss": float(loss.detach()), **terms}
        self.recent.append(terms)
        # Diagnostics for the training curves, kept out of the averaged model metrics.
        return {**terms, "lr": lr, "grad_norm": float(norm)}

    def _lr(self, step: int) -> float:
        """The learning rate of optimiser step ``step`` (1-based): ``lr``, or with the cosine
        schedule lr·(1 + cos(π·(step − 1)/max_steps))/2, which has its last step learn at
        nearly 0 so the weights settle instead of drifting (BENCHMARKS.md, "ebm at 28 px")."""
        cfg = self.config
        assert cfg.lr is not None and cfg.max_steps is not None, "resolve the config"
        if cfg.lr_schedule == "constant":
            return cfg.lr
        return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * (step - 1) / cfg.max_steps))

    def stateful(self) -> dict[str, Any]:
        parts = {"net": self.net, "ema": self.ema, "optimizer": self.optimizer}
        return {**parts, "buffer": self.buffer, "buffer_labels": self.buffer_labels}

    def load_networks_state(self, state: dict[str, Any]) -> None:
        if "ema" not in state:
            # A checkpoint from before the EMA (its config says ema_decay 0): the average
            # of a run that sampled its last weights is those weights.
            net = state["net"]
            state = {**state, "ema": {"averaged": net, "num_updates": int(state["step"])}}
        super().load_networks_state(state)


class EBMEngine(RuntimeEngine[EBMConfig]):
    """The "ebm" engine (see the module docstring for the maths).

    ``train`` reports ``progress(step, max_steps, loss=.., e_pos=.., e_neg=.., reg=..[,
    ce=..], lr=.., grad_norm=..)``; checkpoints hold the replay buffer; the trained model
    keeps the energy network. It cannot start from saved weights (init_from).
    """

    name = NAME
    options = EBMConfig
    run_class = _Run
    sampler_module = "energy"
    sampling = EBMSampleOptions

    def trained_modules(self, run: _Run) -> dict[str, nn.Module]:
        return {"energy": run.ema.averaged}

    def build_sampler(self, config: EBMConfig, channels: int, num_classes: int) -> nn.Module:
        return build_energy(config, channels, num_classes)

    white_box_attack = "negative energy −E(x, y) = f(x)[y] of the averaged energy network"

    def membership_scores(
        self,
        trained: Trained,
        images: torch.Tensor,
        labels: torch.Tensor,
        *,
        seed: int,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> np.ndarray:
        """−E(x, y) of each candidate: p(x, y) ∝ exp(−E(x, y)), so the score is the
        unnormalised log-likelihood, and step 4's E(x+, y+) term lowered the energy of
        every training image the model saw. Higher: what the model finds more likely.

        Scored on the clean candidate (training adds ``data_noise`` to its positives),
        under its label (class 0, the one output, when unconditional), in float32.
        Deterministic: ``seed`` is unused. images uint8 (n, c, h, w), labels int64 (n,)
        → float64 (n,).
        """
        cfg = self.saved_config(trained.config)
        net = trained.modules["energy"].eval().requires_grad_(False)
        device = next(net.parameters()).device
        images, labels = scoring.candidates(trained, images, labels, conditional=cfg.conditional)
        scores = np.empty(len(images), dtype=np.float64)
        with torch.inference_mode():
            for rows, x, y in scoring.batches(images, labels, device, should_stop):
                scores[rows] = (-energy(net, x, y)).double().cpu().numpy()
        return scores

    @torch.inference_mode()
    def draw(self, trained: Trained, config: EBMConfig, want: sampling.Draw) -> torch.Tensor:
        """Draw ``n`` images: uint8 (n, c, h, w) on CPU, by Langevin dynamics from noise.

        opts (checked already, :class:`models.engine_options.ebm.EBMSampleOptions`): steps
            (config ``sample_steps``), step_size and noise (the training values),
            batch_size (256); progress(done, total) after each Langevin step and
            should_stop() polled before each batch.
        The same (n, labels, seed, opts) on the same device gives identical images.
        """
        n, labels, seed, opts = want.n, want.labels, want.seed, want.opts
        assert config.grad_clip is not None, "resolve the config"
        steps = opts.get("steps", config.sample_steps)
        step_size = float(opts.get("step_size", config.step_size))
        noise = float(opts.get("noise", config.noise))
        batch_size = opts.get("batch_size", 256)
        sampling.check_positive_int("batch_size", batch_size)
        net = trained.modules["energy"].eval().requires_grad_(False)
        device = next(net.parameters()).device
        generator = torch.Generator(device=device).manual_seed(seed)
        y_all = (labels if labels is not None else torch.zeros(n, dtype=torch.int64)).to(device)
        out = torch.empty((n, *trained.image_shape), dtype=torch.uint8)
        ticks = sampling.SampleProgress(opts, math.ceil(n / batch_size) * steps, "steps")
        for part in sampling.iter_batches(n, batch_size):
            ticks.check_stop()
            count = part.stop - part.start
            x0 = torch.rand((count, *trained.image_shape), generator=generator, device=device)
            x = langevin(
                net,
                devices.channels_last(x0 * 2 - 1, device),
                y_all[part],
                steps=steps,
                step_size=step_size,
                noise=noise,
                grad_clip=config.grad_clip,
                generator=generator,
                on_step=ticks.tick,
            )
            out[part] = pixels.to_uint8(x)
        return out


ENGINE = EBMEngine()
