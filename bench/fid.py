"""FID wall time: our path against pytorch-fid's, same images, same network, same run.

Both paths compute Inception-v3 pool3 features of two image sets of ``--n`` images each
and the Fréchet distance between them:

- ours: ``models.metrics.features.InceptionFeatures`` (plain-torch FID Inception) feeding
  ``RunningStats`` batch by batch, then the eigenvalue ``frechet_distance``;
- pytorch-fid: its ``InceptionV3([3])`` on the same weights, activations gathered as its
  ``get_activations`` does, ``np.mean``/``np.cov``, ``calculate_frechet_distance`` (sqrtm).

Images come from memory in both paths (pytorch-fid's PNG decoding is left out of both).
The sets: ``--n`` images of ``<dataset>:train`` (cycled when the split is smaller) and the
same images with Gaussian noise, so the distance is far from zero.

Weights: ``--weights`` (pytorch-fid's pt_inception-2015-12-05-6726825d.pth); without it a
randomly initialised FID Inception is saved and used by both paths. Its batch-norm
statistics are first set from a few of the images (a forward pass in train mode), because
at PyTorch's default init the pool3 activations shrink to near-constants and every FID is
~0; the network then times the same and its FIDs compare the two paths, but mean nothing
as image quality. Needs pytorch-fid and an importable torchvision.

Each path runs ``--repeats`` times, alternating, and the fastest run counts: on a shared
machine the load changes between runs.

    python bench/fid.py --n 10000 --device cuda --weights pt_inception-2015-12-05-6726825d.pth
    python bench/fid.py --n 64                      # a CPU smoke run
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models import datasets  # noqa: E402
from models.metrics.features import InceptionFeatures  # noqa: E402
from models.metrics.frechet import RunningStats, frechet_distance  # noqa: E402
from models.metrics.inception import FIDInceptionV3  # noqa: E402


def image_sets(dataset: str, n: int, root: str | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Two uint8 (n, c, h, w) sets: real images, and the same with noise."""
    images = datasets.load(dataset, "train", root=root).images
    real = images[torch.arange(n) % images.shape[0]]
    noise = torch.randn(real.shape, generator=torch.Generator().manual_seed(0)) * 40
    return real, (real.float() + noise).clamp(0, 255).to(torch.uint8)


def random_weights(images: torch.Tensor, path: Path) -> None:
    """Save a random FID Inception whose batch-norm statistics fit ``images`` (n, c, h, w)."""
    torch.manual_seed(0)
    model = FIDInceptionV3()
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # a cumulative average: one batch sets the statistics
    x = images.float() / 255.0
    with torch.no_grad():
        model.train()(x.repeat(1, 3 // x.shape[1], 1, 1))
    torch.save(model.state_dict(), path)


def ours(weights: Path, sets, batch_size: int, device: str) -> tuple[float, dict[str, float]]:
    start = time.perf_counter()
    extractor = InceptionFeatures(weights, device=device, batch_size=batch_size)
    stats = [RunningStats(extractor.dim) for _ in sets]
    for images, running in zip(sets, stats, strict=True):
        for i in range(0, images.shape[0], batch_size):
            running.update(extractor(images[i : i + batch_size]))
    features_done = time.perf_counter()
    a, b = stats
    value = frechet_distance(a.mean, a.cov, b.mean, b.cov)
    end = time.perf_counter()
    return value, {"features": features_done - start, "distance": end - features_done}


def pytorch_fid(
    weights: Path, sets, batch_size: int, device: str
) -> tuple[float, dict[str, float]]:
    import pytorch_fid.inception as pfi
    from pytorch_fid.fid_score import calculate_frechet_distance

    start = time.perf_counter()
    state = torch.load(weights, map_location="cpu", weights_only=True)
    with mock.patch.object(pfi, "load_state_dict_from_url", lambda *a, **k: state):
        model = pfi.InceptionV3([pfi.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).to(device).eval()
    moments = []
    for images in sets:
        # pytorch-fid's get_activations, minus the file loading: float [0, 1], RGB.
        acts = np.empty((images.shape[0], 2048))
        for i in range(0, images.shape[0], batch_size):
            batch = images[i : i + batch_size].to(device).float() / 255.0
            if batch.shape[1] == 1:
                batch = batch.repeat(1, 3, 1, 1)
            with torch.no_grad():
                pred = model(batch)[0]
            acts[i : i + batch.shape[0]] = pred.squeeze(3).squeeze(2).cpu().numpy()
        moments.append((np.mean(acts, axis=0), np.cov(acts, rowvar=False)))
    features_done = time.perf_counter()
    value = float(calculate_frechet_distance(*moments[0], *moments[1]))
    end = time.perf_counter()
    return value, {"features": features_done - start, "distance": end - features_done}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="images per set")
    parser.add_argument("--dataset", default="mnist_t10k")
    parser.add_argument("--root", default="/work/shared/data/mnist-t10k")
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()

    sets = image_sets(args.dataset, args.n, args.root)
    weights = args.weights
    if weights is None:
        weights = Path(tempfile.mkdtemp()) / "fid-inception-random.pth"
        random_weights(sets[0][:16], weights)
        print("no --weights: both paths use the same random FID Inception (BN set from data)")
    print(
        f"{args.n} + {args.n} images of {args.dataset} {tuple(sets[0].shape[1:])}, "
        f"device {args.device}, batch {args.batch_size}, torch threads {torch.get_num_threads()}"
    )

    runs: dict[str, list[tuple[float, dict[str, float]]]] = {"ours": [], "pytorch-fid": []}
    for _ in range(args.repeats):
        runs["ours"].append(ours(weights, sets, args.batch_size, args.device))
        runs["pytorch-fid"].append(pytorch_fid(weights, sets, args.batch_size, args.device))
    (our_value, our_t), (their_value, their_t) = (
        min(r, key=lambda run: sum(run[1].values())) for r in runs.values()
    )
    our_total, their_total = sum(our_t.values()), sum(their_t.values())
    print(f"{'':12}{'features s':>12}{'distance s':>12}{'total s':>10}{'FID':>16}")
    for name, t, total, value in (
        ("ours", our_t, our_total, our_value),
        ("pytorch-fid", their_t, their_total, their_value),
    ):
        print(f"{name:12}{t['features']:12.2f}{t['distance']:12.2f}{total:10.2f}{value:16.8g}")
    print(
        f"time ratio ours/pytorch-fid: {our_total / their_total:.3f} "
        f"(distance alone {our_t['distance'] / their_t['distance']:.3f}); "
        f"FID relative difference {abs(our_value - their_value) / abs(their_value):.2e}"
    )


if __name__ == "__main__":
    main()
