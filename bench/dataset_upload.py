"""Upload and validation throughput for a 60,000-image ImageFolder zip.

The zip is MNIST t10k repeated six times (10,000 PNGs encoded once, each stored under
six names: class/rep_index.png), about the size of MNIST's training set. Measured:

1. upload: one presigned PUT of the file to an S3 server (SeaweedFS, the stack's store),
   and one PUT to the API's own signed URL (the embedded stack's local store), each
   streamed from disk, MB/s;
2. validation: what the validate_dataset job does after its download (two passes over the
   archive, decode, split, data.npz, thumbnail) in a fresh process: seconds, MB/s,
   images/s and peak RSS; beside ``models.datasets.load_imagefolder_zip``, the library's
   one-pass loader that holds every decoded image in memory, in its own fresh process.

    python bench/dataset_upload.py                 # 60,000 images
    python bench/dataset_upload.py --repeat 1      # 10,000: a quick run

Writes bench/out/dataset-upload.json.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = Path(__file__).parent / "out"
MNIST = "/work/shared/data/mnist-t10k"
WEED = Path(sys.executable).with_name("weed")


def build_zip(path: Path, repeat: int) -> int:
    from PIL import Image

    from models import datasets

    parts = [datasets.load("mnist_t10k", s, root=MNIST) for s in ("train", "test")]
    pngs = []
    for part in parts:
        for image, label in zip(part.images.numpy(), part.labels.tolist(), strict=True):
            buf = io.BytesIO()
            Image.fromarray(image[0]).save(buf, format="PNG")
            pngs.append((label, buf.getvalue()))
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for rep in range(repeat):
            for i, (label, data) in enumerate(pngs):
                archive.writestr(f"mnist/{label}/{rep}_{i:05d}.png", data)
    return len(pngs) * repeat


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def weed_ports(n: int) -> list[int]:
    """Free ports whose +10000 (where SeaweedFS puts each service's gRPC) are free too."""
    found = []
    for port in range(21000 + os.getpid() % 4000, 29000):
        with socket.socket() as a, socket.socket() as b:
            if a.connect_ex(("127.0.0.1", port)) and b.connect_ex(("127.0.0.1", port + 10000)):
                found.append(port)
        if len(found) == n:
            return found
    raise RuntimeError("no free ports for SeaweedFS")


def wait_for(url: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not come up")


def put_seconds(url: str, path: Path) -> float:
    started = time.monotonic()
    with path.open("rb") as body:
        response = httpx.put(url, content=body, timeout=600,
                             headers={"Content-Length": str(path.stat().st_size)})  # fmt: skip
    response.raise_for_status()
    return time.monotonic() - started


def upload_s3(path: Path, work: Path) -> float:
    from core.storage import S3Storage

    port, volume, filer, s3_port = weed_ports(4)
    config = work / "s3.json"
    identity = {"name": "bench", "credentials": [{"accessKey": "k", "secretKey": "s"}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"]}  # fmt: skip
    config.write_text(json.dumps({"identities": [identity]}))
    (work / "weed").mkdir()
    proc = subprocess.Popen(  # noqa: S603
        [str(WEED), "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={work / 'weed'}",
         f"-master.port={port}", f"-volume.port={volume}", f"-filer.port={filer}",
         "-filer", "-s3", f"-s3.port={s3_port}", f"-s3.config={config}"],
        stdout=(work / "weed.log").open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        endpoint = f"http://127.0.0.1:{s3_port}"
        wait_for(endpoint, proc)
        store = S3Storage(bucket="bench", endpoint_url=endpoint, access_key_id="k",
                          secret_access_key="s")  # fmt: skip
        for _ in range(60):
            try:
                store._client.create_bucket(Bucket="bench")
                break
            except Exception:  # noqa: BLE001 - the filer may still be starting
                time.sleep(0.5)
        size = path.stat().st_size
        url = store.presign_put("upload/original", 600, size=size, max_bytes=size)
        return put_seconds(url, path)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def upload_api(path: Path, work: Path) -> float:
    from core.storage import LocalStorage

    port = free_port()
    env = {**os.environ, "SYNTHGEN_STORAGE_URL": f"file://{work / 'store'}",
           "SYNTHGEN_PUBLIC_URL": f"http://127.0.0.1:{port}",
           "SYNTHGEN_DATABASE_URL": f"sqlite:///{work / 'db.sqlite'}",
           "SYNTHGEN_URL_SIGNING_SECRET": "bench", "PYTHONPATH": str(ROOT)}  # fmt: skip
    proc = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "uvicorn", "api.main:app", "--port", str(port), "--log-level",
         "warning"], cwd=ROOT, env=env,
    )  # fmt: skip
    try:
        wait_for(f"http://127.0.0.1:{port}/healthz", proc)
        store = LocalStorage(root=work / "store", public_url=f"http://127.0.0.1:{port}",
                             signing_secret="bench")  # fmt: skip
        size = path.stat().st_size
        url = store.presign_put("upload/original", 600, size=size, max_bytes=size)
        return put_seconds(url, path)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def child(mode: str, path: Path, work: Path) -> None:
    """One measurement in this fresh process; prints a JSON line."""
    import numpy as np

    from core.config import Settings
    from models import datasets
    from models.uploads import split_mask
    from worker.datasets import validate
    from worker.datasets.archive import Limits
    from worker.datasets.formats import Options, read

    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.monotonic()
    if mode == "validate":
        settings = Settings()
        options = Options(Limits.for_datasets(settings), settings.dataset_max_pixels,
                          settings.dataset_max_side, False)  # fmt: skip
        images = read("zip", path, work, options, lambda done, total: None)
        split = split_mask(images.labels, 0.2, 0)
        validate._write_npz(work / "data.npz", images, split)
        validate._thumbnail(images)
        count = images.count
    else:
        count = len(datasets.load_imagefolder_zip(path))
        np.zeros(1)
    seconds = time.monotonic() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"images": count, "seconds": seconds, "baseline_mib": baseline,
                      "peak_rss_mib": peak}))  # fmt: skip


def measure(mode: str, path: Path, work: Path) -> dict:
    done = subprocess.run(  # noqa: S603
        [sys.executable, __file__, "--child", mode, "--zip", str(path), "--work", str(work)],
        capture_output=True, text=True, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=6)
    parser.add_argument("--child", choices=["validate", "naive"])
    parser.add_argument("--zip", type=Path)
    parser.add_argument("--work", type=Path)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.zip, args.work)
        return
    OUT.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-upload-"))
    try:
        path = work / "mnist.zip"
        count = build_zip(path, args.repeat)
        mb = path.stat().st_size / 1e6
        print(f"{count} images, {mb:.1f} MB")
        result: dict = {"images": count, "zip_mb": mb}
        for name, upload in (("s3_presigned_put", upload_s3), ("api_signed_put", upload_api)):
            target = work / name
            target.mkdir()
            seconds = upload(path, target)
            result[name] = {"seconds": seconds, "mb_per_s": mb / seconds}
            print(f"upload {name}: {seconds:.2f} s, {mb / seconds:.0f} MB/s")
        for mode in ("validate", "naive"):
            target = work / mode
            target.mkdir()
            figures = measure(mode, path, target)
            figures["mb_per_s"] = mb / figures["seconds"]
            figures["images_per_s"] = figures["images"] / figures["seconds"]
            result[mode] = figures
            print(f"{mode}: {figures}")
        result["ratios"] = {
            "time validate/naive": result["validate"]["seconds"] / result["naive"]["seconds"],
            "peak rss validate/naive": result["validate"]["peak_rss_mib"]
            / result["naive"]["peak_rss_mib"],
        }
        print(result["ratios"])
        (OUT / "dataset-upload.json").write_text(json.dumps(result, indent=1))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
