"""Write time and size of each output format for 60,000 MNIST-size images, against npz.

The images are MNIST t10k repeated six times (real digits, so PNG sizes are those of
MNIST; 10,000 distinct images), written by each format's writer exactly as a generate
job does (shards of 1,000 images, with labels and seeds, to the local store), one format
after the other in this process. Measured per format: seconds to write (add + finish,
manifest included), bytes of the format's files (manifest apart), and both as ratios to
npz measured in the same run; then the seconds to read every image back with the
format's reader and whether the pixels and labels read back equal those written (the
quality beside the speed: a fast writer that loses images would show here).

    python bench/formats.py                    # 60,000 images
    python bench/formats.py --repeat 1         # 10,000: a quick run

Writes bench/results/formats.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MNIST = "/work/shared/data/mnist-t10k"
OUT = Path(__file__).parent / "results" / "formats.json"
SHARD = 1000  # a generate job's default shard_size


def images(repeat: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    from models import datasets

    parts = [datasets.load("mnist_t10k", s, root=MNIST) for s in ("train", "test")]
    pixels = np.concatenate([p.images.numpy() for p in parts])
    labels = np.concatenate([p.labels.numpy() for p in parts])
    return np.tile(pixels, (repeat, 1, 1, 1)), np.tile(labels, repeat), parts[0].class_names


def run(fmt: str, pixels: np.ndarray, labels: np.ndarray, classes: list[str], work: Path) -> dict:
    from core.storage import LocalStorage
    from worker import formats

    store = LocalStorage(root=work / "store", public_url="http://h", signing_secret="s")
    (work / "w").mkdir(parents=True)
    target = formats.Target(
        store, "jobs/j", work / "w", len(labels), tuple(pixels.shape[1:]), classes, "mv"
    )
    start = time.perf_counter()
    writer = formats.writer(fmt, target)
    for at in range(0, len(labels), SHARD):
        writer.add(pixels[at : at + SHARD], labels[at : at + SHARD], np.full(SHARD, at))
    objects = writer.finish()
    write_s = time.perf_counter() - start
    size = sum(obj.size for name, obj in objects if name != formats.MANIFEST)
    manifest = sum(obj.size for name, obj in objects if name == formats.MANIFEST)

    (work / "r").mkdir()
    source = formats.Source(store, "jobs/j", work / "r", classes, None, SHARD)
    start = time.perf_counter()
    batches, total = formats.read(fmt, source)
    back = list(batches)
    read_s = time.perf_counter() - start
    equal = total == len(labels) and bool(
        np.array_equal(np.concatenate([b[0] for b in back]), pixels)
        and np.array_equal(np.concatenate([b[1] for b in back]), labels)
    )
    return {
        "format": fmt,
        "location": writer.location,
        "files": len(objects) - 1,
        "write_s": round(write_s, 2),
        "bytes": size,
        "manifest_bytes": manifest,
        "read_s": round(read_s, 2),
        "read_back_equal": equal,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=6, help="copies of the 10,000 t10k images")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    pixels, labels, classes = images(args.repeat)
    rows = []
    for fmt in ("npz", "parquet", "webdataset", "imagefolder", "png"):
        work = Path(tempfile.mkdtemp(prefix=f"bench-{fmt}-"))
        try:
            rows.append(run(fmt, pixels, labels, classes, work))
        finally:
            shutil.rmtree(work, ignore_errors=True)
        print(json.dumps(rows[-1]), flush=True)
    npz = rows[0]
    for row in rows:
        row["write_time_vs_npz"] = round(row["write_s"] / npz["write_s"], 2)
        row["size_vs_npz"] = round(row["bytes"] / npz["bytes"], 3)
    result = {
        "what": "write time and size per output format, 28x28 grayscale MNIST t10k x "
        f"{args.repeat}, shards of {SHARD} as a generate job writes them, to the local store",
        "images": int(len(labels)),
        "raw_pixel_bytes": int(pixels.nbytes),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "omp_threads": os.environ.get("OMP_NUM_THREADS"),
        },
        "formats": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
