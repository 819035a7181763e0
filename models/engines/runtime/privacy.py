"""Differentially private training: DP-SGD for the one network of a run that sees the
real data, with Opacus (per-example gradients, clipping, noise, the PRV accountant).

References:
    Abadi et al. 2016, "Deep Learning with Differential Privacy", arXiv:1607.00133
        — Algorithm 1: clip each example's gradient to C, add N(0, σ²C²), average.
    Mironov, Talwar & Zhang 2019, "Rényi Differential Privacy of the Sampled Gaussian
        Mechanism", arXiv:1908.10530 — the amplification assumes Poisson sampling.
    Gopi, Lee & Wutschitz 2021, "Numerical Composition of Differential Privacy",
        arXiv:2106.02848 — the PRV accountant that counts ε here.
    Yousefpour et al. 2021, "Opacus: User-Friendly Differential Privacy Library in
        PyTorch", arXiv:2109.12298.

An engine declares which network is private (:attr:`.run.TrainingRun.private_module`:
ddpm's UNet, gan's discriminator; the networks that see real data only through it, such
as a GAN's generator, and weight averages are post-processing and cost no ε). This
module does the rest, in one place:

1. Before training: refuse what would break the guarantee (several GPUs, a network
   Opacus cannot take per-example gradients of, δ ≥ 1/n), and solve the noise
   multiplier σ for the target ε at the run's private steps and q = batch_size / n.
2. Every private step: a Poisson-sampled batch (:class:`PoissonOrder`: each example in
   with probability q), per-example gradients (Opacus's hooks), each clipped to C, the
   sum plus N(0, σ²C²), divided by the expected batch size (Opacus's DPOptimizer); the
   accountant counts the step.
3. The accountant's history is part of the checkpoint, so a resumed run continues the
   same ε, bit for bit.

The batches and the noise are drawn from a generator of their own, seeded from the
operating system's entropy, not from the run's ``seed``: the seed is written into the
model's config, and whoever holds it could redraw a seeded noise and subtract it, or
know which examples each batch held (the sampling amplifies privacy only while it is
secret). That generator's state lives in the checkpoint alone (a job's own files), so a
resumed run still draws what an uninterrupted one would; a fresh private run with the
same seed draws other noise (all the other draws, t, ε or z, still follow the seed).
"""

from __future__ import annotations

import contextlib
import secrets
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

import opacus
import torch
from opacus import GradSampleModule
from opacus.accountants import PRVAccountant
from opacus.accountants.utils import get_noise_multiplier
from opacus.optimizers import DPOptimizer
from opacus.validators import ModuleValidator

from models.engine_options.base import PrivacyOptions, default_delta
from models.engines import distributed
from models.engines.base import EngineError

# Opacus's hooks are full backward hooks on every layer; the first layer's input (the
# images) takes no gradient, so torch would warn at every private step, harmlessly.
warnings.filterwarnings(
    "ignore",
    message="Full backward hook is firing when gradients are computed with respect to module "
    "outputs since no inputs require gradients",
    category=UserWarning,
)

ACCOUNTANT = "prv"
"""Opacus's PRV accountant: numerically composed privacy loss distributions, tighter
than RDP (tests/unit/models/test_privacy.py checks it against Google's dp_accounting)."""

EPSILON_EVERY = 100
"""ε is counted every this many private steps, or every hundredth of the run when that is
longer (a count takes 0.1 s at 5,000 steps, seconds for long runs at high sampling
rates): the progress reports the ε of the current block's end, an upper bound of what the
steps so far spent, exact at the end of each block and at the last step."""


class PoissonOrder:
    """Poisson sampling: each of the ``n`` examples joins a batch with probability
    ``sample_rate``, independently, so a batch holds ``sample_rate · n`` examples on
    average and may hold none. The draws come from ``generator`` (the private one, whose
    state is in every checkpoint), so a resumed run draws the batches an uninterrupted
    one would. The interface of :class:`.data_order.DataOrder`."""

    def __init__(self, n: int, sample_rate: float, generator: torch.Generator) -> None:
        self.n = n
        self.sample_rate = sample_rate
        self.generator = generator

    def next_indices(self) -> torch.Tensor:
        """int64 (k,) on the CPU, k ~ Binomial(n, q): the dataset indices of the next
        batch (on the CPU as DataOrder's, for data kept off the GPU)."""
        device = self.generator.device
        chosen = torch.rand(self.n, generator=self.generator, device=device) < self.sample_rate
        return chosen.nonzero().flatten().cpu()

    def state_dict(self) -> dict[str, Any]:
        return {"sample_rate": self.sample_rate}  # the draws' state is the generator's

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if float(state["sample_rate"]) != self.sample_rate:
            raise EngineError("privacy: the checkpoint's sampling rate differs from this run's")


class Private:
    """DP-SGD of ``module`` through ``optimizer``: :attr:`optimizer` (Opacus's DPOptimizer
    around it) replaces the engine's, :attr:`order` the run's data order.

    ``steps`` is the number of private optimiser steps of the whole run (the noise is
    solved for it); ``batch_size`` the expected batch, q = batch_size / n.
    """

    def __init__(
        self,
        options: PrivacyOptions,
        *,
        module: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        name: str,
        n: int,
        batch_size: int,
        steps: int,
        device: torch.device,
    ) -> None:
        if distributed.current().world_size > 1:
            raise EngineError(
                "privacy: a private run trains on one GPU (Opacus's per-example clipping "
                "is per process here); send gpus: 1"
            )
        assert options.delta is not None, "resolve delta (config.with_delta)"
        if options.delta >= 1 / n:
            raise EngineError(
                f"privacy: delta {options.delta:g} is not below 1/n = {1 / n:.3g} for the "
                f"{n} training examples (a δ that large allows publishing a whole example); "
                f"use at most {default_delta(n):g}, or leave delta null"
            )
        if batch_size > n:
            raise EngineError(
                f"privacy: batch_size {batch_size} is more than the {n} training examples; "
                "a private batch samples each example with probability batch_size / n"
            )
        check_private(module, name)
        self.name = name
        self.options = options
        self.delta = options.delta
        self.steps = steps
        self.batch_size = batch_size
        self.sample_rate = batch_size / n
        with warnings.catch_warnings():  # the RDP bound inside the search warns on orders
            warnings.simplefilter("ignore", UserWarning)
            self.noise_multiplier = float(
                get_noise_multiplier(
                    target_epsilon=options.epsilon,
                    target_delta=self.delta,
                    sample_rate=self.sample_rate,
                    steps=steps,
                    accountant=ACCOUNTANT,
                )
            )
        self.generator = torch.Generator(device=device).manual_seed(secret_seed())
        # Hooks on the module's layers: the engine keeps calling the module itself.
        self.grad_sample = GradSampleModule(module, batch_first=True, loss_reduction="mean")
        self.optimizer = DPOptimizer(
            optimizer,
            noise_multiplier=self.noise_multiplier,
            max_grad_norm=options.max_grad_norm,
            expected_batch_size=batch_size,
            loss_reduction="mean",
            generator=self.generator,
        )
        self.accountant = PRVAccountant()
        self.optimizer.attach_step_hook(self._count)
        self.order = PoissonOrder(n, self.sample_rate, self.generator)
        self.block = max(EPSILON_EVERY, -(-steps // 100))
        self._spent: dict[int, float] = {}  # the last count: {steps: ε}

    def _count(self, optimizer: DPOptimizer) -> None:
        self.accountant.step(noise_multiplier=self.noise_multiplier, sample_rate=self.sample_rate)

    @property
    def steps_taken(self) -> int:
        return sum(steps for _, _, steps in self.accountant.history)

    def epsilon(self) -> float:
        """ε spent by the private steps so far at this run's δ (0 before the first)."""
        return self._epsilon_after(self.steps_taken)

    def progress_epsilon(self) -> float:
        """ε at the end of the current block of :attr:`block` private steps (or at the
        run's last one): spent by then, so at least what the steps so far spent."""
        taken = self.steps_taken
        return self._epsilon_after(min(-(-taken // self.block) * self.block, self.steps))

    def _epsilon_after(self, steps: int) -> float:
        """ε of ``steps`` private steps at this run's σ, q and δ (counted once)."""
        if steps == 0:
            return 0.0
        if steps not in self._spent:
            counted = PRVAccountant()
            counted.history = [(self.noise_multiplier, self.sample_rate, steps)]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                self._spent = {steps: float(counted.get_epsilon(delta=self.delta))}
        return self._spent[steps]

    @contextlib.contextmanager
    def passive(self) -> Iterator[None]:
        """The private network used but not trained (a GAN's generator step backpropagates
        through the frozen discriminator): Opacus's hooks off."""
        self.grad_sample.disable_hooks()
        try:
            yield
        finally:
            self.grad_sample.enable_hooks()

    def empty_batch(self) -> None:
        """Stand for the backward pass of an empty Poisson batch (part of the sampling the
        accountant assumes): no example's gradient, so the next step is noise alone."""
        self.optimizer.zero_grad(set_to_none=True)
        for p in self.optimizer.params:
            p.grad_sample = torch.zeros((0, *p.shape), device=p.device, dtype=p.dtype)

    def report(self) -> dict[str, Any]:
        """What the run spent and how, for the result, the lineage and every manifest."""
        return {
            "epsilon": self.epsilon(),
            "target_epsilon": self.options.epsilon,
            "delta": self.delta,
            "max_grad_norm": self.options.max_grad_norm,
            "noise_multiplier": self.noise_multiplier,
            "sample_rate": self.sample_rate,
            "expected_batch_size": self.batch_size,
            "steps": self.steps_taken,
            "planned_steps": self.steps,
            "accountant": ACCOUNTANT,
            "private_module": self.name,
            "library": f"opacus {opacus.__version__}",
        }

    def state_dict(self) -> dict[str, Any]:
        return {
            "generator": self.generator.get_state(),
            "history": [list(entry) for entry in self.accountant.history],
            "noise_multiplier": self.noise_multiplier,
            "planned_steps": self.steps,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if int(state["planned_steps"]) != self.steps:
            raise EngineError(
                f"privacy: the checkpoint's run was private over {state['planned_steps']} "
                f"steps, this one over {self.steps}; a private run resumes with the "
                "max_steps its noise was solved for"
            )
        self.generator.set_state(state["generator"])
        self.accountant.history = [
            (float(sigma), float(q), int(steps)) for sigma, q, steps in state["history"]
        ]


def secret_seed() -> int:
    """A seed from the operating system's entropy, for the draws that must stay secret."""
    return secrets.randbits(63)


def check_private(module: torch.nn.Module, name: str) -> None:
    """EngineError naming ``privacy`` unless Opacus can take per-example gradients of
    every trainable layer of ``module`` (no batch norm, no parametrization such as
    spectral norm, only layers its hooks know)."""
    errors: list[Any] = list(ModuleValidator.validate(module, strict=False))
    if not errors:
        try:
            probe = GradSampleModule(module, batch_first=True, strict=True)
        except NotImplementedError as exc:  # its args: the list of what it cannot take
            found = exc.args[0] if exc.args else exc
            errors = list(found) if isinstance(found, list) else [found]
        else:
            probe.to_standard_module()  # removes its hooks
    if errors:
        first = str(errors[0]).strip().splitlines()[0][:200]
        raise EngineError(
            f"privacy: Opacus cannot take each example's gradient of the {name} ({first})"
        )
