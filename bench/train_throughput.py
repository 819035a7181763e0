"""Training throughput of each engine, and ddpm's against a plain diffusers loop.

For every engine: ``--warmup`` steps, then ``--steps`` timed steps of its own training
loop (timed between ``hooks.progress`` calls); reported as steps/s and training images
consumed per second (batch_size × n_critic for the GAN). For ddpm the same UNet config is
also trained by the loop of diffusers' training example ``train_unconditional.py`` with
``--use_ema`` (UNet2DModel + DDPMScheduler.add_noise + MSE + AdamW, ``clip_grad_norm_(1.0)``
and diffusers' own ``EMAModel.step`` every step, as ours clips and keeps an EMA) in the
same process, and the ratio printed: above 1.0 means the engine's loop is faster. The two
loops are timed in alternating rounds, so a change in machine load hits both alike.

    python bench/train_throughput.py                       # ddpm, gan, ebm on digits 16px
    python bench/train_throughput.py --engines gan --set gan.variant='"wgan-gp"'
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F  # noqa: N812 - the conventional alias
from diffusers import DDPMScheduler
from diffusers.training_utils import EMAModel

from models import datasets, engines
from models.engines import ddpm
from models.engines.base import Hooks
from models.engines.runtime import devices, pixels


def engine_rate(
    name: str, data: datasets.ImageDataset, config: dict, warmup: int, steps: int
) -> tuple[float, float, dict]:
    """(steps/s, images/s, resolved config) over ``steps`` steps after ``warmup``."""
    stamps: list[float] = []
    hooks = Hooks(progress=lambda step, total, **terms: stamps.append(time.perf_counter()))
    full = {**config, "max_steps": warmup + steps, "checkpoint_every": 0}
    trained = engines.get(name).train(data, full, hooks)
    per_second = steps / (stamps[-1] - stamps[warmup - 1])
    images = trained.config["batch_size"] * trained.config.get("n_critic", 1)
    return per_second, per_second * images, trained.config


def plain_diffusers_rate(
    data: datasets.ImageDataset, config: dict, warmup: int, steps: int
) -> float:
    """steps/s of diffusers' example training loop on the ddpm engine's UNet config."""
    cfg = ddpm.resolve_config(ddpm.DDPMConfig(**config), data.image_shape[-1])
    device = devices.pick_device()
    torch.manual_seed(cfg.seed)
    unet = ddpm.build_unet(cfg, data.image_shape[0], data.num_classes).to(device).train()
    scheduler = DDPMScheduler(num_train_timesteps=cfg.num_train_timesteps)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=cfg.lr)
    ema = EMAModel(unet.parameters(), decay=cfg.ema_decay, use_ema_warmup=True, foreach=True)
    images = pixels.to_unit_range(data.images).to(device)
    labels = data.labels.to(device)
    started = 0.0
    for step in range(warmup + steps):
        if step == warmup:
            started = time.perf_counter()
        index = torch.randint(0, len(images), (cfg.batch_size,), device=device)
        x0, y = images[index], labels[index]
        noise = torch.randn_like(x0)
        t = torch.randint(0, cfg.num_train_timesteps, (cfg.batch_size,), device=device)
        noisy = scheduler.add_noise(x0, noise, t)
        loss = F.mse_loss(unet(noisy, t, class_labels=y).sample, noise)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        optimizer.step()
        ema.step(unet.parameters())
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engines", default="ddpm,gan,ebm")
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--root", default=None)
    parser.add_argument("--image-size", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="ENGINE.KEY=JSON",
        help="override a config value, e.g. --set ddpm.batch_size=64",
    )
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (ddpm)")
    # On a shared CPU, OpenMP threads spinning on busy cores make small convolutions many
    # times slower than one thread; raise this on a machine of your own.
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    overrides: dict[str, dict[str, object]] = {}
    for item in args.set:
        key, _, value = item.partition("=")
        engine_name, _, field = key.partition(".")
        overrides.setdefault(engine_name, {})[field] = json.loads(value)

    data = datasets.load(args.dataset, "train", args.image_size, args.root)
    print(
        f"{args.dataset} {args.image_size}px on {devices.pick_device()}, "
        f"{torch.get_num_threads()} thread(s); {args.steps} steps after {args.warmup}"
    )
    for name in args.engines.split(","):
        config = {"image_size": args.image_size, **overrides.get(name, {})}
        rounds = args.rounds if name == "ddpm" else 1
        ours, plain = [], []
        for _ in range(rounds):  # alternate, keep the best of each: load drift hits both
            ours.append(engine_rate(name, data, config, args.warmup, args.steps))
            if name == "ddpm":
                plain.append(plain_diffusers_rate(data, config, args.warmup, args.steps))
        steps_s, images_s, resolved = max(ours, key=lambda rate: rate[0])
        line = f"{name:5s} {steps_s:7.2f} steps/s  {images_s:8.1f} img/s"
        if plain:
            line += (
                f"  diffusers example loop {max(plain) * resolved['batch_size']:8.1f} img/s"
                f"  ratio {steps_s / max(plain):.2f}"
            )
        print(line, flush=True)


if __name__ == "__main__":
    main()
