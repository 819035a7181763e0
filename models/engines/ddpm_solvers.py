"""ddpm's multistep ODE solvers (samplers a generate job may ask for, declared with the
sampling options in :mod:`models.engine_options.ddpm`): diffusers' maintained schedulers
driven by our UNet.

References:
    Lu et al. 2022, "DPM-Solver++: Fast Solver for Guided Sampling of Diffusion
        Probabilistic Models", arXiv:2211.01095 — the second-order multistep data-prediction
        solver ("2M", Algorithm 2), and static thresholding of x̂_0 for pixel-space models.
    Zhao et al. 2023, "UniPC: A Unified Predictor-Corrector Framework for Fast Sampling of
        Diffusion Models", arXiv:2302.04867 — UniP-2 with the UniC corrector (B(h) = e^h - 1,
        "bh2").

"ddim" and "ddpm" are our own loops (:mod:`.ddpm_steps`); a solver keeps its history of
model outputs between steps, so it is a diffusers scheduler made fresh for every batch
(``set_timesteps`` resets that history). The scheduler gets the model's own noise schedule
(the same β's as :func:`models.engines.ddpm.alphas_cumprod`, a test compares ᾱ), the
prediction type the UNet was trained for (ε) and x̂_0 clipped to the data range [-1, 1] as
our DDIM does (diffusers' ``thresholding`` with ``sample_max_value`` 1: the dynamic
threshold's quantile is clamped to [1, 1], so it is the static clip DPM-Solver++ §5
recommends for pixel-space models with guidance).
"""

from __future__ import annotations

from typing import Any

from diffusers import DPMSolverMultistepScheduler, SchedulerMixin, UniPCMultistepScheduler

from models.engine_options.ddpm import Solver

SOLVERS: dict[Solver, type[SchedulerMixin]] = {
    "dpm_solver_multistep": DPMSolverMultistepScheduler,
    "unipc": UniPCMultistepScheduler,
}
"""Sampler name (declared with the sampling options, :data:`models.engine_options.ddpm.Solver`)
→ diffusers scheduler class (the names txt2img uses for the same classes)."""

SOLVER_OPTIONS: dict[Solver, dict[str, Any]] = {
    # DPM-Solver++ 2M: data prediction, second order, first order at the last step
    # (stabler at fewer than 15 steps).
    "dpm_solver_multistep": {
        "algorithm_type": "dpmsolver++",
        "solver_order": 2,
        "lower_order_final": True,
    },
    # UniPC with order 2, the order its authors use with guidance.
    "unipc": {"solver_order": 2, "predict_x0": True, "solver_type": "bh2"},
}

BETA_SCHEDULES = {"linear": "linear", "cosine": "squaredcos_cap_v2"}
"""Our ``beta_schedule`` names → diffusers' (the same β's: Ho et al.; Nichol & Dhariwal)."""


def make_solver(name: Solver, num_train_timesteps: int, beta_schedule: str) -> SchedulerMixin:
    """A fresh diffusers scheduler for solver ``name`` on the model's noise schedule."""
    return SOLVERS[name](
        num_train_timesteps=num_train_timesteps,
        beta_schedule=BETA_SCHEDULES[beta_schedule],
        prediction_type="epsilon",  # the UNet predicts the noise (Ho et al. eq. 14)
        thresholding=True,
        sample_max_value=1.0,
        **SOLVER_OPTIONS[name],
    )
