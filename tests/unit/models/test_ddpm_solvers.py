"""ddpm's multistep solvers (DPM-Solver++ 2M, UniPC) and its sampling precision, on a
16-channel UNet trained for a few dozen steps on 8x8 shapes (seconds).

A solver's images must be diffusers' own: its pipeline (unconditional) or the loop of
its class-conditional DiT pipeline (guided) with the same scheduler class, configured
only as documented (diffusers' defaults plus x̂_0 clipped to [-1, 1]), within one grey
level in fp32. bf16 sampling must stay close to fp32 (tolerance below).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import (
    DDPMPipeline,
    DPMSolverMultistepScheduler,
    UniPCMultistepScheduler,
)

from models import datasets, engines
from models.engines import accel, ddpm, ddpm_sampling, ddpm_solvers
from models.engines.base import EngineError, Trained

BRIEF = {
    "max_steps": 40,
    "batch_size": 16,
    "base_channels": 16,
    "layers_per_block": 1,
    "warmup_steps": 0,
    "lr": 2e-3,
    "seed": 0,
}
DIFFUSERS = {"dpm_solver_multistep": DPMSolverMultistepScheduler, "unipc": UniPCMultistepScheduler}
BF16_MEAN_LEVELS = 2.0
BF16_P99_LEVELS = 8.0
"""bf16 against fp32 images of the same seeds: mean |difference| ≤ 2 grey levels, 99 % of
pixels within 8 (measured on this model: mean ≤ 1.3, p99 ≤ 5 at 10 steps, guided or not)."""
engine = engines.get("ddpm")


@pytest.fixture(scope="module")
def conditional(tiny_shapes: datasets.ImageDataset) -> Trained:
    return engine.train(tiny_shapes, BRIEF)


@pytest.fixture(scope="module")
def unconditional(tiny_shapes: datasets.ImageDataset) -> Trained:
    return engine.train(tiny_shapes, {**BRIEF, "conditional": False})


def _their_scheduler(name: str) -> DPMSolverMultistepScheduler | UniPCMultistepScheduler:
    # Nothing but what the module docstring promises on top of diffusers' defaults.
    return DIFFUSERS[name](thresholding=True, sample_max_value=1.0)


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    # As diffusers' pipelines: (x / 2 + 0.5).clamp(0, 1), numpy, × 255, rounded.
    images = (x / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).numpy()
    return torch.from_numpy((images * 255).round().astype(np.uint8)).permute(0, 3, 1, 2)


def _dit_loop(
    trained: Trained, name: str, labels: torch.Tensor, steps: int, scale: float
) -> torch.Tensor:
    """diffusers' DiTPipeline's loop (classifier-free guidance on a doubled batch, the
    null class last) with our UNet in place of the transformer and no VAE."""
    unet, scheduler = trained.modules["unet"], _their_scheduler(name)
    generator = torch.Generator().manual_seed(0)
    latents = torch.randn((len(labels), *trained.image_shape), generator=generator)
    if scale == 1.0:  # DiT's loop without guidance: one forward of the labels
        scheduler.set_timesteps(steps)
        with torch.inference_mode():
            for t in scheduler.timesteps:
                noise_pred = unet(latents, t[None].expand(len(latents)), labels).sample
                latents = scheduler.step(noise_pred, t, latents).prev_sample
        return _to_uint8(latents)
    model_input = torch.cat([latents] * 2)
    class_input = torch.cat([labels, torch.full_like(labels, trained.num_classes)])
    scheduler.set_timesteps(steps)
    with torch.inference_mode():
        for t in scheduler.timesteps:
            half = model_input[: len(model_input) // 2]
            model_input = scheduler.scale_model_input(torch.cat([half, half]), t)
            noise_pred = unet(model_input, t[None].expand(len(model_input)), class_input).sample
            cond_eps, uncond_eps = noise_pred.chunk(2)
            half_eps = uncond_eps + scale * (cond_eps - uncond_eps)
            model_input = scheduler.step(
                torch.cat([half_eps, half_eps]), t, model_input
            ).prev_sample
    return _to_uint8(model_input.chunk(2)[0])


@pytest.mark.parametrize("beta_schedule", ["linear", "cosine"])
@pytest.mark.parametrize("name", list(ddpm_solvers.SOLVERS))
def test_a_solver_runs_on_the_models_own_noise_schedule(name, beta_schedule):
    config = ddpm.DDPMConfig(beta_schedule=beta_schedule, num_train_timesteps=500)
    solver = ddpm_solvers.make_solver(name, 500, beta_schedule)
    ours = ddpm.alphas_cumprod(config)
    torch.testing.assert_close(solver.alphas_cumprod.double(), ours, rtol=1e-6, atol=1e-7)
    assert solver.config.prediction_type == "epsilon"


def test_dpm_solver_matches_diffusers_pipeline_with_the_same_scheduler(unconditional):
    # DDPMPipeline runs any scheduler whose step takes a generator (UniPC's does not: the
    # loop below covers it).
    name = "dpm_solver_multistep"
    ours = engine.sample(unconditional, 4, seed=0, sampler=name, steps=10, precision="fp32")
    pipeline = DDPMPipeline(unet=unconditional.modules["unet"], scheduler=_their_scheduler(name))
    pipeline.set_progress_bar_config(disable=True)
    output = pipeline(
        batch_size=4, generator=torch.Generator().manual_seed(0), num_inference_steps=10,
        output_type="np",
    )  # fmt: skip
    theirs = torch.from_numpy((output.images * 255).round().astype(np.uint8)).permute(0, 3, 1, 2)
    assert (ours.int() - theirs.int()).abs().max() <= 1  # float rounding at the uint8 step


@pytest.mark.parametrize("scale", [1.0, 2.0])
@pytest.mark.parametrize("name", list(ddpm_solvers.SOLVERS))
def test_a_solver_matches_diffusers_class_conditional_loop(conditional, name, scale):
    labels = torch.tensor([0, 1, 2, 3, 4, 0])
    ours = engine.sample(
        conditional, 6, labels=labels, seed=0, sampler=name, steps=10,
        guidance_scale=scale, precision="fp32",
    )  # fmt: skip
    theirs = _dit_loop(conditional, name, labels, 10, scale)
    assert (ours.int() - theirs.int()).abs().max() <= 1


def test_solvers_are_deterministic_and_differ_from_ddim(conditional):
    ddim = engine.sample(conditional, 4, seed=3, sampler="ddim", steps=10)
    for name in ddpm_solvers.SOLVERS:
        first = engine.sample(conditional, 4, seed=3, sampler=name, steps=10)
        assert torch.equal(first, engine.sample(conditional, 4, seed=3, sampler=name, steps=10))
        assert not torch.equal(first, ddim)


def test_sampler_and_steps_left_out_take_the_defaults():
    assert ddpm_sampling.sampler_and_steps({}, 1000) == (
        ddpm_sampling.DEFAULT_SAMPLER,
        ddpm_sampling.DEFAULT_STEPS[ddpm_sampling.DEFAULT_SAMPLER],
    )
    assert ddpm_sampling.sampler_and_steps({"sampler": "ddim"}, 1000) == ("ddim", 50)
    assert ddpm_sampling.sampler_and_steps({"sampler": "unipc", "steps": 7}, 1000) == ("unipc", 7)
    assert ddpm_sampling.sampler_and_steps({"sampler": "ddim"}, 10) == ("ddim", 10)


def test_eta_without_a_sampler_keeps_meaning_ddim():
    # eta belongs to DDIM alone: a request that set only eta keeps the images it had.
    assert ddpm_sampling.sampler_and_steps({"eta": 0.5}, 1000) == ("ddim", 50)


def test_eta_with_a_solver_and_an_unknown_precision_are_refused(conditional):
    with pytest.raises(EngineError, match="eta applies to sampler 'ddim' only"):
        engine.sample(conditional, 1, sampler="dpm_solver_multistep", eta=0.5, steps=2)
    with pytest.raises(EngineError, match=r"precision must be one of \['auto', 'fp32'\]"):
        engine.sample(conditional, 1, steps=2, precision="fp16")


def test_sampling_precision_is_bf16_only_where_the_cpu_has_it(monkeypatch):
    cpu = torch.device("cpu")
    assert accel.sample_precision(cpu, "fp32") is None
    monkeypatch.setattr(accel, "cpu_has_bf16", lambda: False)
    assert accel.sample_precision(cpu, "auto") is None  # emulated bf16 is slower: fp32
    monkeypatch.setattr(accel, "cpu_has_bf16", lambda: True)
    assert accel.sample_precision(cpu, "auto") is torch.bfloat16
    assert accel.sample_precision(torch.device("cuda"), "auto") is torch.bfloat16


def test_without_torchs_checks_bf16_is_read_from_cpuinfo(monkeypatch):
    accel.cpu_has_bf16.cache_clear()
    for name in accel._TORCH_BF16_CHECKS:
        monkeypatch.delattr(torch.cpu, name, raising=False)
    try:
        monkeypatch.setattr(accel, "_cpuinfo_flags", lambda: {"fpu", "avx512f"})
        assert accel.cpu_has_bf16() is False
        accel.cpu_has_bf16.cache_clear()
        monkeypatch.setattr(accel, "_cpuinfo_flags", lambda: {"avx512f", "avx512_bf16"})
        assert accel.cpu_has_bf16() is True
    finally:
        accel.cpu_has_bf16.cache_clear()


@pytest.mark.skipif(not accel.cpu_has_bf16(), reason="this CPU has no native bf16")
@pytest.mark.parametrize("name", ["ddim", *ddpm_solvers.SOLVERS])
@pytest.mark.parametrize("scale", [1.0, 2.0])
def test_bf16_images_stay_within_the_stated_tolerance_of_fp32(conditional, name, scale):
    opts = {"sampler": name, "steps": 10, "guidance_scale": scale}
    bf16 = engine.sample(conditional, 32, seed=0, **opts).int()
    fp32 = engine.sample(conditional, 32, seed=0, precision="fp32", **opts).int()
    levels = (bf16 - fp32).abs().float()
    assert not torch.equal(bf16, fp32)  # auto did sample in bf16 here
    assert levels.mean() <= BF16_MEAN_LEVELS
    assert levels.flatten().quantile(0.99) <= BF16_P99_LEVELS


def test_compiling_is_decided_by_the_images_the_caller_plans_not_one_call(conditional, monkeypatch):
    # A generate job samples shard by shard; whether compiling on CPU pays is the job's.
    seen: list[int | None] = []

    def record(module, device, work=None):
        seen.append(work)
        return module

    monkeypatch.setattr(accel, "compiled", record)
    engine.sample(conditional, 2, steps=3, sampler="unipc")
    engine.sample(conditional, 2, steps=3, sampler="unipc", planned_images=60_000)
    assert seen == [2 * 3, 60_000 * 3]
