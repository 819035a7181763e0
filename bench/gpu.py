r"""Every GPU benchmark of issue 16 in one command: ours against diffusers and pytorch-fid,
side by side in this process, same UNet, same weights; prints the ratios, writes JSON.

1. train: img/s of the ddpm engine's own training loop (``engines.get("ddpm").train``:
   bf16 autocast, channels_last, torch.compile, fused Adam, data on the GPU) against the
   loop of diffusers' ``examples/unconditional_image_generation/train_unconditional.py``
   at its defaults (fp32, AdamW betas (0.95, 0.999) wd 1e-6, cosine schedule, grad clip
   1.0, ``EMAModel`` with warmup, ``loss.item()`` logged every step), on the same UNet
   config (the engine's default at --image-size) and batch. The example's DataLoader of
   PIL transforms is left out: its loop reads batches from a tensor already on the GPU,
   which can only flatter it. Target: ratio >= 2.
2. sample: img/s of ``ddpm.ENGINE.sample`` (DDIM, 50 steps) against diffusers'
   ``DDIMPipeline`` (fp32, ``output_type="np"``), one unconditional UNet with the same
   random weights (a forward costs the same whatever the weights), same batch. Target >= 3.
   Beside it (issue 28) our multistep solvers, DPM-Solver++ 2M and UniPC, at
   ``solver_steps`` (the step count bench/solvers.py found within DDIM 50's quality on
   CPU), each with its ratio against the same ``DDIMPipeline`` at 50 steps.
3. fid: img/s of Inception-v3 pool3 features, ours (``InceptionFeatures``) against
   pytorch-fid's ``InceptionV3`` as its ``get_activations`` runs it, same images, same
   batch, and the FID of both. No weights can be downloaded on a lent GPU host, so both
   load one seeded random FID Inception whose batch-norm statistics are set from the
   images (at PyTorch's default init pool3 collapses to near-constants and every FID is
   ~0); the FIDs then compare the two paths, not image quality. Both FIDs come from our
   ``frechet_distance`` on each path's features, so they differ only as the features do.
   Target >= 1.0 at the same value.

Beside every figure: mean GPU utilisation over the timed window (NVML, sampled in a
thread) and torch's peak allocated memory. Each pair is timed in alternating rounds, the
best of each counts; full mode adds our loops run eagerly (``ours_eager``: what compiling
buys). A failing section is recorded as its error and the others still run.

On a lent CUDA host without network (torch, numpy, scipy, torchvision, huggingface_hub
there; diffusers, pytorch-fid and pydantic not), ``bash bench/gpu_session.sh prep`` here
puts their wheels in .whl/ (git-ignored), and ``bash bench/gpu_session.sh run`` there
installs them and runs this with --quick, then the 28 px quality runs. This alone:

    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl \
        && PYTHONPATH=/tmp/site:$PWD python3 bench/gpu.py --out $OUT/gpu.json

    make bench-gpu                # the same, with the project's venv
    python bench/gpu.py --quick   # fewer rounds and images, no eager (uncompiled) figures
    python bench/gpu.py --smoke   # tiny sizes, runs on CPU (tests run this)
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fid import random_weights  # noqa: E402
from gpu_support import (  # noqa: E402
    Figure,
    Utilisation,
    compile_setting,
    moments,
    peak_memory,
    ratio,
    smooth_images,
    sync,
    timed,
    versions,
)

from models.datasets import ImageDataset  # noqa: E402
from models.engines import accel, ddpm, ddpm_sampling  # noqa: E402
from models.engines.base import Hooks, Trained  # noqa: E402
from models.engines.runtime import devices, pixels  # noqa: E402

SOLVER_STEPS = ddpm_sampling.DEFAULT_STEPS["dpm_solver_multistep"]
SOLVERS = ("dpm_solver_multistep", "unipc")
# name: (image size, channels, batch, dataset size, our warmup, timed steps, rounds,
#        sample images, sample steps, sample repeats, fid images, fid batch, steps of the
#        multistep solvers, UNet overrides)
MODES: dict[str, dict[str, Any]] = {
    "full": dict(size=32, channels=3, batch=256, data=50_000, warmup=15, steps=60, rounds=2,
                 ablate=True,
                 sample_n=256, sample_steps=50, sample_repeats=5, fid_n=10_000, fid_batch=50,
                 solver_steps=SOLVER_STEPS, unet={}),
    "quick": dict(size=32, channels=3, batch=256, data=20_000, warmup=15, steps=30, rounds=1,
                  sample_n=256, sample_steps=50, sample_repeats=3, fid_n=2_000, fid_batch=50,
                  solver_steps=SOLVER_STEPS, unet={}),
    "smoke": dict(size=8, channels=3, batch=4, data=16, warmup=2, steps=2, rounds=1,
                  ablate=True,
                  sample_n=4, sample_steps=3, sample_repeats=1, fid_n=4, fid_batch=2,
                  solver_steps=2, unet={"base_channels": 8, "layers_per_block": 1}),
}  # fmt: skip
TARGETS = {"train": 2.0, "sample": 3.0, "fid": 1.0}


# --------------------------------------------------------------------------- train


def train_ours(data: ImageDataset, config: dict, m: dict, util: Utilisation) -> Figure:
    stamps: list[float] = []
    hooks = Hooks(progress=lambda step, total, **terms: stamps.append(time.perf_counter()))
    full = {**config, "max_steps": m["warmup"] + m["steps"], "checkpoint_every": 0}
    memory: dict[str, float | None] = {}
    with peak_memory(util.device, memory):
        ddpm.ENGINE.train(data, full, hooks)
    start, end = stamps[m["warmup"] - 1], stamps[-1]
    return Figure(
        m["steps"] * m["batch"] / (end - start), end - start, util.mean(start, end),
        memory["peak_mib"],
    )  # fmt: skip


def train_diffusers(data: ImageDataset, config: dict, m: dict, util: Utilisation) -> Figure:
    """train_unconditional.py's loop at its defaults, accelerate's no-op wrappers left out."""
    from diffusers import DDPMScheduler
    from diffusers.optimization import get_scheduler
    from diffusers.training_utils import EMAModel

    device = util.device
    cfg = ddpm.resolve_config(ddpm.DDPMConfig(**config), data.image_shape[-1])
    torch.manual_seed(cfg.seed)
    memory: dict[str, float | None] = {}
    with peak_memory(device, memory):
        unet = ddpm.build_unet(cfg, data.image_shape[0], data.num_classes).to(device).train()
        scheduler = DDPMScheduler(num_train_timesteps=cfg.num_train_timesteps)
        optimizer = torch.optim.AdamW(
            unet.parameters(), lr=cfg.lr, betas=(0.95, 0.999), weight_decay=1e-6, eps=1e-8
        )
        total = m["warmup"] + m["steps"]
        lr_scheduler = get_scheduler(
            "cosine", optimizer=optimizer, num_warmup_steps=500, num_training_steps=total
        )
        ema = EMAModel(unet.parameters(), decay=0.9999, use_ema_warmup=True, inv_gamma=1.0,
                       power=3 / 4)  # fmt: skip
        images = pixels.to_unit_range(data.images).to(device)
        labels = data.labels.to(device)
        start = 0.0
        for step in range(total):
            if step == m["warmup"]:
                sync(device)
                start = time.perf_counter()
            index = torch.randint(0, len(images), (m["batch"],), device=device)
            clean, y = images[index], labels[index]
            noise = torch.randn(clean.shape, device=device)
            timesteps = torch.randint(0, cfg.num_train_timesteps, (m["batch"],), device=device)
            noisy = scheduler.add_noise(clean, noise, timesteps)
            output = unet(noisy, timesteps, class_labels=y).sample
            loss = torch.nn.functional.mse_loss(output.float(), noise.float())
            loss.backward()
            torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
            optimizer.step()
            lr_scheduler.step()
            optimizer.zero_grad()
            ema.step(unet.parameters())
            logs = {"loss": loss.detach().item(), "lr": lr_scheduler.get_last_lr()[0]}
            logs["ema_decay"] = ema.cur_decay_value
        sync(device)
        end = time.perf_counter()
    return Figure(m["steps"] * m["batch"] / (end - start), end - start, util.mean(start, end),
                  memory["peak_mib"])  # fmt: skip


def bench_train(m: dict, device: torch.device) -> dict[str, Any]:
    n, size = m["data"], m["size"]
    data = ImageDataset(
        name="blobs", split="train", images=smooth_images(n, m["channels"], size, seed=0),
        labels=torch.arange(n) % 10, num_classes=10, class_names=[str(i) for i in range(10)],
    )  # fmt: skip
    config = {"image_size": size, "batch_size": m["batch"], **m["unet"]}
    resolved = dataclasses.asdict(ddpm.resolve_config(ddpm.DDPMConfig(**config), size))
    ours, theirs = [], []
    with Utilisation(device) as util:
        for _ in range(m["rounds"]):  # alternating: a change in load hits both alike
            ours.append(train_ours(data, config, m, util))
            theirs.append(train_diffusers(data, config, m, util))
        # What compiling buys: our loop once more, eager (bf16, channels_last, fused Adam).
        with compile_setting("off"):
            eager = [train_ours(data, config, m, util)] if m.get("ablate") else []
    best = max(ours, key=lambda f: f.images_per_s)
    base = max(theirs, key=lambda f: f.images_per_s)
    shape_keys = ("base_channels", "channel_mult", "layers_per_block", "norm_groups")
    unet = {k: resolved[k] for k in shape_keys}
    return {
        "settings": {"image_size": size, "channels": m["channels"], "batch": m["batch"],
                     "timed_steps": m["steps"], "rounds": m["rounds"], "unet": unet},
        "ours": best.as_dict(), "diffusers": base.as_dict(),
        "ratio": ratio(best.images_per_s, base.images_per_s),
        **({"ours_eager": eager[0].as_dict()} if eager else {}),
    }  # fmt: skip


# --------------------------------------------------------------------------- sample


def bench_sample(m: dict, device: torch.device) -> dict[str, Any]:
    from diffusers import DDIMPipeline, DDIMScheduler

    size, n, steps = m["size"], m["sample_n"], m["sample_steps"]
    cfg = ddpm.resolve_config(
        ddpm.DDPMConfig(image_size=size, conditional=False, **m["unet"]), size
    )
    torch.manual_seed(0)
    unet = ddpm.build_unet(cfg, m["channels"], 10).to(device).eval().requires_grad_(False)
    # Ours gets the module as ddpm.load would hand it over (channels_last on CUDA); the
    # pipeline the plain fp32 one, as diffusers' from_pretrained would.
    mine = devices.channels_last(copy.deepcopy(unet), device)
    shape = (m["channels"], size, size)
    trained = Trained("ddpm", dataclasses.asdict(cfg), 10, shape, [str(i) for i in range(10)],
                      {"unet": mine})  # fmt: skip
    pipeline = DDIMPipeline(unet=unet, scheduler=DDIMScheduler(cfg.num_train_timesteps))
    pipeline.set_progress_bar_config(disable=True)

    def ours(sampler: str = "ddim", steps: int = steps) -> Callable[[], None]:
        def run() -> None:
            ddpm.ENGINE.sample(trained, n, seed=0, sampler=sampler, steps=steps, batch_size=n)

        return run

    def theirs() -> None:
        generator = torch.Generator(device=device).manual_seed(0)
        pipeline(batch_size=n, generator=generator, num_inference_steps=steps, output_type="np")

    contenders = {"ours": ours(), "diffusers": theirs}
    contenders.update({solver: ours(solver, m["solver_steps"]) for solver in SOLVERS})
    runs: dict[str, list[Figure]] = {name: [] for name in contenders}
    with Utilisation(device) as util:
        for run in contenders.values():  # warm-up: compile, kernels, allocator
            run()
        for _ in range(m["sample_repeats"]):
            for name, run in contenders.items():
                runs[name].append(timed(run, n, util))
        if m.get("ablate"):  # what compiling buys: our sampler once more, eager
            with compile_setting("off"):
                runs["ours_eager"] = [timed(ours(), n, util) for _ in range(2)]
    best = {name: max(r, key=lambda f: f.images_per_s) for name, r in runs.items()}
    base = best["diffusers"]
    return {
        "settings": {"image_size": size, "channels": m["channels"], "images": n, "batch": n,
                     "steps": steps, "sampler": "ddim eta 0", "repeats": m["sample_repeats"],
                     "solver_steps": m["solver_steps"]},
        "ours": best["ours"].as_dict(), "diffusers": base.as_dict(),
        "ratio": ratio(best["ours"].images_per_s, base.images_per_s),
        "solvers": {
            solver: {**best[solver].as_dict(),
                     "ratio_vs_ddimpipeline": ratio(best[solver].images_per_s, base.images_per_s)}
            for solver in SOLVERS
        },
        **({"ours_eager": best["ours_eager"].as_dict()} if "ours_eager" in best else {}),
    }  # fmt: skip


# --------------------------------------------------------------------------- fid


def bench_fid(m: dict, device: torch.device) -> dict[str, Any]:
    import pytorch_fid.inception as pfi

    from models.metrics.features import InceptionFeatures
    from models.metrics.frechet import frechet_distance

    n, batch = m["fid_n"], m["fid_batch"]
    real = smooth_images(n, 3, m["size"], seed=1)
    noise = torch.randn(real.shape, generator=torch.Generator().manual_seed(2)) * 40
    sets = (real, (real.float() + noise).clamp(0, 255).to(torch.uint8))
    weights = Path(tempfile.mkdtemp(prefix="bench-gpu-")) / "fid-inception-random.pth"
    random_weights(real[:16], weights)  # 16 images: enough for the statistics

    ours_model = InceptionFeatures(weights, device=device, batch_size=batch)
    state = torch.load(weights, map_location="cpu", weights_only=True)
    with mock.patch.object(pfi, "load_state_dict_from_url", lambda *a, **k: state):
        theirs_model = pfi.InceptionV3([pfi.InceptionV3.BLOCK_INDEX_BY_DIM[2048]])
    theirs_model = theirs_model.to(device).eval()

    def ours(images: torch.Tensor) -> np.ndarray:
        return ours_model(images)

    def theirs(images: torch.Tensor) -> np.ndarray:
        # pytorch-fid's get_activations, minus the file loading: float [0, 1], RGB.
        acts = np.empty((images.shape[0], 2048))
        for i in range(0, images.shape[0], batch):
            x = images[i : i + batch].to(device).float() / 255.0
            with torch.no_grad():
                pred = theirs_model(x)[0]
            acts[i : i + x.shape[0]] = pred.squeeze(3).squeeze(2).cpu().numpy()
        return acts

    features: dict[str, list[np.ndarray]] = {}
    runs: dict[str, list[Figure]] = {"ours": [], "pytorch-fid": []}
    with Utilisation(device) as util:
        ours(sets[0][:batch])  # warm-up
        theirs(sets[0][:batch])
        for _ in range(m["rounds"]):
            for name, extract in (("ours", ours), ("pytorch-fid", theirs)):
                out: list[np.ndarray] = []
                runs[name].append(timed(lambda e=extract, o=out: o.extend(map(e, sets)), 2 * n,
                                        util))  # fmt: skip
                features[name] = out
    # One distance function for both feature sets, so the FIDs compare the features alone
    # (bench/fid.py compares the distance code; scipy's sqrtm there takes ~20 s a call).
    value_ours = frechet_distance(*moments(features["ours"]))
    value_theirs = frechet_distance(*moments(features["pytorch-fid"]))
    a, b = features["ours"][0], features["pytorch-fid"][0]
    best, base = (max(r, key=lambda f: f.images_per_s) for r in runs.values())
    return {
        "settings": {"images": 2 * n, "image_size": m["size"], "batch": batch,
                     "weights": "seeded random FID Inception, batch-norm statistics set"},
        "ours": {**best.as_dict(), "fid": float(value_ours)},
        "pytorch-fid": {**base.as_dict(), "fid": float(value_theirs)},
        "ratio": ratio(best.images_per_s, base.images_per_s),
        "fid_relative_difference": float(abs(value_ours - value_theirs) / abs(value_theirs)),
        "features_max_abs_difference": float(np.abs(a - b).max()),
        "features_max_abs": float(np.abs(b).max()),
    }  # fmt: skip


# --------------------------------------------------------------------------- main

SECTIONS: dict[str, Callable[[dict, torch.device], dict[str, Any]]] = {
    "train": bench_train, "sample": bench_sample, "fid": bench_fid,
}  # fmt: skip
BASELINE = {"train": "diffusers", "sample": "diffusers", "fid": "pytorch-fid"}


def report(name: str, result: dict[str, Any]) -> None:
    if "error" in result:
        print(f"{name:6s} FAILED: {result['error']}", flush=True)
        return
    print(f"{name:6s} ours        {Figure(**_figure(result['ours'])).line()}")
    for key in (BASELINE[name], "ours_eager"):
        if key in result:
            print(f"{'':6s} {key:11s} {Figure(**_figure(result[key])).line()}")
    for solver, figure in result.get("solvers", {}).items():
        steps = result["settings"]["solver_steps"]
        print(f"{'':6s} {solver} {steps} steps {Figure(**_figure(figure)).line()} "
              f"ratio {figure['ratio_vs_ddimpipeline']:.2f} vs DDIMPipeline 50")  # fmt: skip
    verdict = "meets" if result["ratio"] >= TARGETS[name] else "MISSES"
    line = f"{'':6s} ratio {result['ratio']:.2f} ({verdict} the target {TARGETS[name]:g}x)"
    if name == "fid":
        line += (f"; FID ours {result['ours']['fid']:.6g}, pytorch-fid "
                 f"{result['pytorch-fid']['fid']:.6g} (relative difference "
                 f"{result['fid_relative_difference']:.1e})")  # fmt: skip
    print(line, flush=True)


def _figure(values: dict[str, Any]) -> dict[str, Any]:
    keys = ("images_per_s", "seconds", "gpu_util_pct", "peak_mib")
    return {key: values[key] for key in keys}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="one round, fewer images")
    size.add_argument("--smoke", action="store_true", help="tiny sizes; runs on CPU")
    parser.add_argument("--only", default="train,sample,fid", help="sections, comma-separated")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    parser.add_argument(
        "--compile", choices=("auto", "on", "off"), default=None,
        help="torch.compile in the engine (sets SYNTHGEN_COMPILE; default: as set, else auto)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.compile:
        os.environ["SYNTHGEN_COMPILE"] = args.compile
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    m = MODES[mode]
    device = devices.pick_device()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    results: dict[str, Any] = {
        "mode": mode, "device": name, "versions": versions(), "targets": TARGETS,
        "compile": os.environ.get("SYNTHGEN_COMPILE", "auto"),
    }  # fmt: skip
    print(f"bench/gpu.py {mode} on {name}; {results['versions']}", flush=True)
    if device.type != "cuda" and not args.smoke:
        print("no CUDA device: these figures say nothing about a GPU (use --smoke here)")

    def save() -> None:
        if args.out:
            args.out.write_text(json.dumps(results, indent=1, default=str))

    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    for section in args.only.split(","):
        begun = time.perf_counter()
        try:
            results[section] = SECTIONS[section](m, device)
        except Exception as error:  # noqa: BLE001 - one failed section must not lose the rest
            traceback.print_exc()
            results[section] = {"error": f"{type(error).__name__}: {error}"}
        results[section]["section_seconds"] = round(time.perf_counter() - begun, 1)
        report(section, results[section])
        if device.type == "cuda":
            torch.cuda.empty_cache()
        # Whether our figures ran compiled: an empty list means torch.compile never failed.
        results["compile_failures"] = accel.compile_failures()
        save()  # after every section, so a run stopped at a time limit keeps what it measured
    results["seconds"] = round(time.perf_counter() - started, 1)
    if results["compile_failures"]:
        print(f"torch.compile FELL BACK to eager: {results['compile_failures'][0]}")
    print(f"total {results['seconds']:.0f} s", flush=True)
    save()
    if args.out:
        print(f"wrote {args.out}")
    return results


if __name__ == "__main__":
    main()
