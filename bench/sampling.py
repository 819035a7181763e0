"""Sampling benchmark: our DDIM loop against diffusers' DDIMPipeline, and peak memory while
generating a large synthetic dataset in shards.

1. Speed: one unconditional UNet (the default architecture for --image-size), the same
   weights, step count, batch and seed in both samplers, in this process; prints images/s
   of each and the ratio.
   Weights are untrained: the cost of a forward pass does not depend on their values.
   Their images are not compared here: with random weights 50 DDIM steps are chaotic
   (our own sampler at batch 8 vs 16 differs by 50 grey levels on average), so that
   equality is asserted on a trained model in tests/unit/models/test_ddpm.py (≤ 1 level).
2. Memory: --total images from a class-conditional UNet with classifier-free guidance
   (what a generate job runs), --shard at a time, each shard written to an .npz in a
   temporary directory and dropped; prints peak RSS (resource.getrusage).

    .venv/bin/python bench/sampling.py                      # full size: 60,000 16x16 images
    .venv/bin/python bench/sampling.py --total 2000 --steps 10 --batch 64
"""

from __future__ import annotations

import argparse
import dataclasses
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from diffusers import DDIMPipeline, DDIMScheduler  # noqa: E402

from models.engines import ddpm  # noqa: E402
from models.engines.base import Trained  # noqa: E402
from models.engines.runtime import devices, sampling  # noqa: E402


def build(image_size: int, base_channels: int, conditional: bool) -> Trained:
    config = ddpm.resolve_config(
        ddpm.DDPMConfig(
            image_size=image_size, base_channels=base_channels, conditional=conditional
        ),
        image_size,
    )
    torch.manual_seed(0)
    device = devices.pick_device()
    unet = ddpm.build_unet(config, 1, 10).to(device).eval().requires_grad_(False)
    classes = [str(i) for i in range(10)]
    shape = (1, image_size, image_size)
    return Trained("ddpm", dataclasses.asdict(config), 10, shape, classes, {"unet": unet})


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def bench_speed(args: argparse.Namespace) -> None:
    trained = build(args.image_size, args.base_channels, conditional=False)
    unet = trained.modules["unet"]
    pipeline = DDIMPipeline(unet=unet, scheduler=DDIMScheduler())
    pipeline.set_progress_bar_config(disable=True)

    def ours() -> torch.Tensor:
        return ddpm.ENGINE.sample(
            trained, args.batch, seed=0, steps=args.steps, batch_size=args.batch
        )

    def theirs() -> torch.Tensor:
        generator = torch.Generator(device=unet.device).manual_seed(0)
        output = pipeline(
            batch_size=args.batch,
            generator=generator,
            num_inference_steps=args.steps,
            output_type="np",
        )
        return torch.from_numpy((output.images * 255).round().astype(np.uint8)).permute(0, 3, 1, 2)

    timings: dict[str, list[float]] = {"ours": [], "diffusers": []}
    ours(), theirs()  # warm-up: allocator, kernels, lazy imports
    for _ in range(args.repeats):  # interleaved, so drift in machine load hits both alike
        for name, run in (("ours", ours), ("diffusers", theirs)):
            start = time.perf_counter()
            run()
            timings[name].append(time.perf_counter() - start)
    rate = {name: args.batch / min(times) for name, times in timings.items()}
    print(
        f"speed: {args.batch} images {args.image_size}x{args.image_size}, DDIM {args.steps} steps, "
        f"best of {args.repeats}, device {unet.device}, {torch.get_num_threads()} threads"
    )
    print(f"  ours                 {rate['ours']:9.2f} images/s")
    print(f"  diffusers pipeline   {rate['diffusers']:9.2f} images/s")
    print(f"  ratio ours/diffusers {rate['ours'] / rate['diffusers']:9.3f}")


def bench_memory(args: argparse.Namespace) -> None:
    trained = build(args.image_size, args.base_channels, conditional=True)
    baseline = peak_rss_mib()
    start = time.perf_counter()
    written = 0
    with tempfile.TemporaryDirectory(prefix="bench-sampling-") as directory:
        for shard, part in enumerate(sampling.iter_batches(args.total, args.shard)):
            count = part.stop - part.start
            labels = torch.arange(part.start, part.stop) % trained.num_classes
            images = ddpm.ENGINE.sample(
                trained, count, labels=labels, seed=shard, steps=args.steps, batch_size=args.batch
            )
            path = Path(directory, f"shard-{shard:05d}.npz")
            np.savez(path, images=images.numpy(), labels=labels.numpy())
            written += path.stat().st_size
            del images
    seconds = time.perf_counter() - start
    print(
        f"memory: {args.total} images {args.image_size}x{args.image_size} in shards of "
        f"{args.shard}, conditional + guidance, DDIM {args.steps} steps, batch {args.batch}"
    )
    print(f"  peak RSS before sampling {baseline:9.1f} MiB")
    print(f"  peak RSS after sampling  {peak_rss_mib():9.1f} MiB")
    rate = args.total / seconds
    print(f"  wrote {written / 2**20:.1f} MiB in {seconds:.1f} s ({rate:.1f} images/s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image-size", type=int, default=16)
    parser.add_argument("--base-channels", type=int, default=64)
    parser.add_argument("--steps", type=int, default=50, help="denoising steps")
    parser.add_argument("--batch", type=int, default=256, help="images per forward pass")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per sampler")
    parser.add_argument("--total", type=int, default=60_000, help="images for the memory run")
    parser.add_argument("--shard", type=int, default=1000, help="images per shard file")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    # Memory first: ru_maxrss only ever grows, so the speed run must not set the peak.
    if not args.skip_memory:
        bench_memory(args)
    if not args.skip_speed:
        bench_speed(args)


if __name__ == "__main__":
    main()
