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
Sampling runs step 3 from uniform noise for ``steps`` steps: several times a training
chain, as the buffer's chains are several training steps old, but not many times more:
far longer chains of a persistently trained EBM drift to a few oversaturated images per
class (Nijkamp et al. 2020, "On the Anatomy of MCMC-Based Maximum Likelihood Learning of
Energy-Based Models", arXiv:1903.12370).
"""

from __future__ import annotations

import collections
import dataclasses
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812 - the conventional alias
from torch import nn
from torch.nn.utils import parametrize

from models.datasets import ImageDataset, resize
from models.engine_options.ebm import EBMConfig
from models.engines import accel, common, training
from models.engines.base import EngineError, Hooks, Stopped, Trained
from models.engines.nets import EnergyNet

NAME = "ebm"
_SAMPLE_OPTIONS = ("steps", "step_size", "noise", "batch_size", "progress", "should_stop")


def resolve_config(config: EBMConfig, data_size: int | None) -> EBMConfig:
    """Fill the derived fields: ``image_size`` from the data, ``width`` and ``buffer_size``
    by image size, as declared with the options (:mod:`models.engine_options.ebm`), which
    check every value."""
    image_size = config.image_size or data_size
    if image_size is None:
        raise EngineError("the dataset's images are not square; set image_size to train on them")
    return training.checked(config.resolved, NAME, image_size=image_size)


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
            with training.autocast(x.device):
                e = energy(net, x, y).sum()  # the samples are independent: ∇ of the sum
            (grad,) = torch.autograd.grad(e, x)
            eps = torch.randn(x.shape, generator=generator, device=x.device)
            x = (x.detach() - step_size * grad.clamp(-grad_clip, grad_clip) + noise * eps).clamp(
                -1.0, 1.0
            )
            if on_step is not None:
                on_step()
    return x


class _Run:
    """Everything a training run mutates, so a checkpoint can capture and restore it."""

    def __init__(
        self, config: EBMConfig, data: ImageDataset, images: torch.Tensor, device: torch.device
    ) -> None:
        assert config.buffer_size is not None
        self.config = config
        self.device = device
        self.images, self.labels = accel.place_dataset([images, data.labels], device)
        self.num_labels = data.num_classes if config.conditional else 1
        self.generator = training.seed_everything(config.seed, device)
        net = build_energy(config, data.image_shape[0], data.num_classes).to(device)
        self.net = training.channels_last(net, device).train()
        self.optimizer = torch.optim.Adam(
            self.net.parameters(),
            lr=config.lr,
            betas=(config.betas[0], config.betas[1]),
            fused=device.type == "cuda",
        )
        # The replay buffer: persistent chains x (buffer_size, c, s, s) and their labels.
        shape = (config.buffer_size, *images.shape[1:])
        self.buffer = self._uniform(shape)
        self.buffer_labels = self._random_labels(config.buffer_size)
        self.order = training.DataOrder(len(images), config.batch_size, config.seed)
        self.budget = training.Budget(config.max_steps, config.max_seconds)
        self.step = 0
        self.recent: collections.deque[dict[str, float]] = collections.deque(maxlen=100)
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
        # 1. x+ ~ data (+ small Gaussian noise), y+ its labels.
        index = self.order.next_indices()
        x_pos = training.to_unit_range(accel.gather(self.images, index, device))
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
            training.channels_last(x0, device),
            y_neg,
            steps=cfg.langevin_steps,
            step_size=cfg.step_size,
            noise=cfg.noise,
            grad_clip=cfg.grad_clip,
            generator=self.generator,
        )
        self.net.train().requires_grad_(True)
        self.buffer[slots], self.buffer_labels[slots] = x_neg.contiguous(), y_neg
        # 4. one forward pass over [x+; x−] (one spectral-norm power iteration per step).
        with training.autocast(device):
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
        training.check_finite("the energy loss", loss, self.hint, step=step)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = training.grad_norm(self.net)
        self.optimizer.step()
        self.step = step
        terms = {"loss": float(loss.detach()), **terms}
        self.recent.append(terms)
        # Diagnostics for the training curves, kept out of the averaged model metrics.
        return {**terms, "lr": cfg.lr, "grad_norm": float(norm)}

    def state_dict(self) -> dict[str, Any]:
        return {
            "engine": NAME,
            "config": dataclasses.asdict(self.config),
            "step": self.step,
            "net": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "buffer": self.buffer,
            "buffer_labels": self.buffer_labels,
            "generator": self.generator.get_state(),
            "rng": training.rng_state(),
            "data": self.order.state_dict(),
            "budget": self.budget.state_dict(),
            "recent": list(self.recent),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        common.check_resume(NAME, self.config, state)
        self.step = int(state["step"])
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.buffer.copy_(state["buffer"])
        self.buffer_labels.copy_(state["buffer_labels"])
        self.generator.set_state(state["generator"])
        training.set_rng_state(state["rng"])
        self.order.load_state_dict(state["data"])
        self.budget.load_state_dict(state["budget"])
        self.recent.extend(state["recent"])


class EBMEngine:
    """The "ebm" engine (see the module docstring for the maths)."""

    name = NAME

    def default_config(self, *, image_size: int) -> dict[str, Any]:
        return dataclasses.asdict(resolve_config(EBMConfig(), image_size))

    def train(
        self, data: ImageDataset, config: Mapping[str, Any], hooks: Hooks | None = None
    ) -> Trained:
        """Train f on ``data`` (images uint8 (n, c, h, w), labels int64 (n,)).

        Calls ``hooks.progress(step, max_steps, loss=.., e_pos=.., e_neg=.., reg=..[, ce=..],
        lr=.., grad_norm=..)`` after every step, raises Stopped when ``hooks.should_stop()``
        turns true, TrainingDiverged on a non-finite loss, and every ``checkpoint_every`` steps
        hands a resumable checkpoint (replay buffer included) to
        ``hooks.checkpoint(step, dir)``.
        """
        hooks = hooks or Hooks()
        _, _, height, width = data.images.shape
        cfg = resolve_config(
            training.make_config(EBMConfig, config, engine=NAME),
            height if height == width else None,
        )
        common.check_training_labels(cfg.conditional, data)
        assert cfg.image_size is not None
        square = (height, width) == (cfg.image_size, cfg.image_size)
        images = data.images if square else resize(data.images, cfg.image_size)
        run = _Run(cfg, data, images, training.pick_device())
        if hooks.init_from is not None:
            raise EngineError("the ebm engine cannot start from saved weights (init_from)")
        if hooks.resume_from is not None:
            run.load_state_dict(training.load_state(hooks.resume_from))
        common.train_loop(NAME, run, hooks, cfg.checkpoint_every)

        metrics: dict[str, float] = {"steps": float(run.step), "seconds": run.budget.elapsed}
        for key in run.recent[-1] if run.recent else ():
            metrics[key] = sum(terms[key] for terms in run.recent) / len(run.recent)
        return Trained(
            engine=NAME,
            config=dataclasses.asdict(cfg),
            num_classes=data.num_classes,
            image_shape=(data.image_shape[0], cfg.image_size, cfg.image_size),
            class_names=list(data.class_names),
            modules={"energy": run.net.eval().requires_grad_(False)},
            metrics=metrics,
        )

    @torch.inference_mode()
    def sample(
        self,
        trained: Trained,
        n: int,
        labels: torch.Tensor | None = None,
        seed: int = 0,
        **opts: Any,
    ) -> torch.Tensor:
        """Draw ``n`` images: uint8 (n, c, h, w) on CPU, by Langevin dynamics from noise.

        opts: steps (config ``sample_steps``), step_size and noise (the training values),
            batch_size (256); progress(done, total) after each Langevin step and
            should_stop() polled before each batch.
        labels: int64 (n,) in [0, num_classes), or None for classes in turn (0, 1, ...).
        The same (n, labels, seed, opts) on the same device gives identical images.
        """
        common.check_sample_options(NAME, opts, _SAMPLE_OPTIONS)
        cfg = EBMConfig(**trained.config)
        steps = opts.get("steps", cfg.sample_steps)
        step_size = float(opts.get("step_size", cfg.step_size))
        noise = float(opts.get("noise", cfg.noise))
        batch_size = opts.get("batch_size", 256)
        progress, should_stop = opts.get("progress"), opts.get("should_stop")
        if not isinstance(steps, int) or steps < 1:
            raise EngineError(f"steps must be a positive integer, got {steps!r}")
        if step_size <= 0 or noise < 0:
            raise EngineError("step_size must be > 0 and noise >= 0")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise EngineError(f"batch_size must be a positive integer, got {batch_size!r}")
        y = common.sample_labels(trained, cfg.conditional, n, labels)
        net = trained.modules["energy"].eval().requires_grad_(False)
        device = next(net.parameters()).device
        generator = torch.Generator(device=device).manual_seed(seed)
        y_all = (y if y is not None else torch.zeros(n, dtype=torch.int64)).to(device)
        out = torch.empty((n, *trained.image_shape), dtype=torch.uint8)
        total = math.ceil(n / batch_size) * steps
        done = 0

        def tick() -> None:
            nonlocal done
            done += 1
            if progress is not None:
                progress(done, total)

        for part in training.iter_batches(n, batch_size):
            if should_stop is not None and should_stop():
                raise Stopped(f"sampling stopped after {done} of {total} steps")
            count = part.stop - part.start
            x0 = torch.rand((count, *trained.image_shape), generator=generator, device=device)
            x = langevin(
                net,
                training.channels_last(x0 * 2 - 1, device),
                y_all[part],
                steps=steps,
                step_size=step_size,
                noise=noise,
                grad_clip=cfg.grad_clip,
                generator=generator,
                on_step=tick,
            )
            out[part] = training.to_uint8(x)
        return out

    def save(self, trained: Trained, directory: Path) -> list[Path]:
        """``model.safetensors`` (the energy network) and ``config.json`` in ``directory``."""
        return training.save_trained(trained, directory)

    def load(self, directory: Path) -> Trained:
        """Rebuild what :meth:`save` wrote, on CUDA when available; no pickle involved."""
        description, states = training.read_trained(directory, NAME)
        cfg = resolve_config(
            training.make_config(EBMConfig, description["config"], engine=NAME), None
        )
        c, h, w = (int(v) for v in description["image_shape"])
        num_classes = int(description["num_classes"])
        net = build_energy(cfg, c, num_classes)
        net.load_state_dict(states["energy"])
        device = training.pick_device()
        net = training.channels_last(net.to(device), device).eval().requires_grad_(False)
        return Trained(
            engine=NAME,
            config=dataclasses.asdict(cfg),
            num_classes=num_classes,
            image_shape=(c, h, w),
            class_names=list(description["class_names"]),
            modules={"energy": net},
            metrics=dict(description["metrics"]),
        )


ENGINE = EBMEngine()
