"""ddpm's sampling loop: x_T ~ N(0, I) denoised to x_0 by one of its samplers, batch by
batch, with classifier-free guidance (Ho & Salimans 2022, eq. 6).

"ddim" (Song et al. 2021) and "ddpm" (Ho et al. 2020, Algorithm 2) are our own reverse
steps (:mod:`.ddpm_steps`); "dpm_solver_multistep" and "unipc" are diffusers' multistep
solvers (:mod:`.ddpm_solvers`). The options a request may name are declared, checked and
documented once, in :class:`models.engine_options.ddpm.DDPMSampleOptions`; the engine
checks them before this loop runs (:meth:`.ddpm.DDPMEngine.check_sample` adds the model's
own bound on ``steps``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from models.engine_options.ddpm import SOLVERS, DDPMConfig
from models.engines import accel, ddpm_solvers, ddpm_steps
from models.engines.base import Trained
from models.engines.runtime import pixels, sampling

DEFAULT_SAMPLER = "dpm_solver_multistep"
"""The sampler of a request that names none: DPM-Solver++ 2M, whose 5 steps scored within
the run-to-run spread of DDIM at 50 steps (label agreement 1.00 against 0.97-0.98, FD 12.9
against 19.8-21.5 in the dataset classifier's features; digits 16 px, guidance 2) at a
tenth of the network evaluations (bench/solvers.py, BENCHMARKS.md, issue 28)."""
DEFAULT_STEPS = {"ddim": 50, "ddpm": 50, "dpm_solver_multistep": 5, "unipc": 5}
"""Each sampler's steps when a request names none: DDIM and DDPM keep their 50 (requests
that name them keep their images); each solver its fewest steps within DDIM 50's spread."""


def draw(
    trained: Trained, config: DDPMConfig, want: sampling.Draw, ab: torch.Tensor
) -> torch.Tensor:
    """Draw ``n`` images: uint8 (n, c, h, w) on CPU, from the EMA weights; ``ab`` is the
    model's ᾱ_t (T,).

    opts (checked already): sampler (:data:`DEFAULT_SAMPLER` when left out, ddim when
        only eta is given); steps (:data:`DEFAULT_STEPS` of the sampler, at most
        num_train_timesteps); guidance_scale s (the model's ``sample_guidance_scale``, by
        image size; 1 = no guidance, 0 = unconditional); eta (0.0, DDIM only: 0
        deterministic, 1 DDPM-like); precision ("auto": bf16 autocast on CUDA and on a CPU
        with native bf16, :func:`.accel.sample_precision`; "fp32"); batch_size (on CPU
        256, on a GPU what half its free memory holds, at most 1024: images depend on the
        batching, so name it where they must repeat under other memory loads);
        planned_images (n: how many images the caller samples from this model in all, a
        generate job's count; decides whether compiling on CPU pays); progress(step,
        total) and should_stop() polled once per denoising step.
    The same (n, labels, seed, opts with batch_size) on one device gives identical images.
    """
    n, y, seed, opts = want.n, want.labels, want.seed, want.opts
    cfg = config
    sampler, steps = sampler_and_steps(opts, cfg.num_train_timesteps)
    assert cfg.sample_guidance_scale is not None, "resolve the config"
    scale = float(opts.get("guidance_scale", cfg.sample_guidance_scale))
    eta = float(opts.get("eta", 0.0))
    batch_size = opts.get("batch_size")
    if batch_size is not None:
        sampling.check_positive_int("batch_size", batch_size)

    unet = trained.modules["unet"]
    device = next(unet.parameters()).device
    guided = y is not None and scale != 1.0
    if batch_size is None:
        widths = [cfg.base_channels * m for m in cfg.channel_mult or []]
        per_image = accel.unet_bytes_per_image(widths, cfg.layers_per_block, cfg.image_size)
        batch_size = accel.sample_batch_size(device, per_image * (2 if guided else 1))
    precision = accel.sample_precision(device, opts.get("precision", "auto"))
    planned = opts.get("planned_images", n)
    sampling.check_positive_int("planned_images", planned)
    forward = accel.compiled(unet, device, work=max(n, planned) * steps)
    generator = torch.Generator(device=device).manual_seed(seed)
    out = torch.empty((n, *trained.image_shape), dtype=torch.uint8)
    ticks = sampling.SampleProgress(opts, math.ceil(n / batch_size) * steps, "steps")
    if sampler in SOLVERS:
        denoise = _solver_loop(sampler, cfg, steps, device)
    else:
        plan = ddpm_steps.reverse_steps(ab, steps, sampler, eta, device)
        denoise = _own_loop(plan, generator)
    with torch.inference_mode(), accel.autocast(device, precision):
        for part in sampling.iter_batches(n, batch_size):
            count = part.stop - part.start
            # x_T ~ N(0, I)
            x = torch.randn((count, *trained.image_shape), generator=generator, device=device)
            y_in = None
            if y is not None:
                y_in = y[part].to(device)
                if guided:  # cond and uncond halves in one forward pass
                    y_in = torch.cat([y_in, torch.full_like(y_in, trained.num_classes)])

            def eps(x: torch.Tensor, t: torch.Tensor, y_in: Any = y_in) -> torch.Tensor:
                ticks.check_stop()
                return ddpm_steps.predict_noise(forward, x, t, y_in, scale if guided else None)

            out[part] = pixels.to_uint8(denoise(x, eps, ticks.tick))
    return out


Denoise = Callable[
    [torch.Tensor, Callable[[torch.Tensor, torch.Tensor], torch.Tensor], Callable[[], None]],
    torch.Tensor,
]
"""x_T, ε(x_t, t) and a per-step tick → x_0, float32 (b, c, h, w)."""


def sampler_and_steps(opts: Any, num_train_timesteps: int) -> tuple[str, int]:
    """The sampler and steps of a request: :data:`DEFAULT_SAMPLER` at
    :data:`DEFAULT_STEPS` when it names neither; a named sampler without steps gets its
    own default (50 for ddim and ddpm, as before the solvers); ``eta`` without a sampler
    means ddim, the only sampler that has it (requests from before keep their images).
    Steps are at most ``num_train_timesteps``."""
    sampler = opts.get("sampler")
    if sampler is None:
        sampler = "ddim" if "eta" in opts else DEFAULT_SAMPLER
    steps = opts.get("steps", DEFAULT_STEPS.get(sampler, 50))
    if "steps" not in opts:
        steps = min(steps, num_train_timesteps)
    return sampler, steps


def _own_loop(plan: list[ddpm_steps.Step], generator: torch.Generator) -> Denoise:
    """DDIM or ancestral DDPM over the precomputed ``plan`` (:mod:`.ddpm_steps`)."""

    def denoise(x: torch.Tensor, eps: Any, tick: Callable[[], None]) -> torch.Tensor:
        for step in plan:
            x = ddpm_steps.reverse_step(x, eps(x, step.t), step, generator)
            tick()
        return x

    return denoise


def _solver_loop(sampler: str, cfg: DDPMConfig, steps: int, device: torch.device) -> Denoise:
    """A diffusers multistep solver (:mod:`.ddpm_solvers`), fresh for every batch: it
    keeps the previous steps' model outputs."""

    def denoise(x: torch.Tensor, eps: Any, tick: Callable[[], None]) -> torch.Tensor:
        solver = ddpm_solvers.make_solver(sampler, cfg.num_train_timesteps, cfg.beta_schedule)
        solver.set_timesteps(steps, device=device)
        for t in solver.timesteps:
            x = solver.step(eps(x, t), t, x, return_dict=False)[0]
            tick()
        return x

    return denoise
