"""``make run``: start the embedded stack, train a real DDPM on digits, generate images
from it, and say where they are."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from client.embedded import embedded_env
from client.sdk import Client


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit("the embedded stack exited during start-up; see the output above")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    sys.exit("the embedded stack did not become ready in time")


def _show(job: dict[str, Any]) -> None:
    progress = job.get("progress") or {}
    metrics = " ".join(f"{k}={v:.4g}" for k, v in (progress.get("metrics") or {}).items())
    eta = progress.get("eta_seconds")
    print(
        f"\r  {job['kind']:<8} {job['status']:<9} {progress.get('stage') or '':<9} "
        f"{100 * (progress.get('fraction') or 0):5.1f}%  "
        f"eta {eta if eta is not None else '?':>6}s  {metrics:<40}",
        end="",
        flush=True,
    )


def run(home: Path, port: int, *, max_seconds: float) -> int:
    home = home.resolve()
    env = {**os.environ, **embedded_env(home, port)}
    os.environ.update(embedded_env(home, port))
    url = f"http://127.0.0.1:{port}"
    stack = subprocess.Popen(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "client.cli", "up", "--home", str(home), "--port", str(port)],
        env=env,
    )
    try:
        _wait_ready(url, stack)
        from core.config import Settings
        from core.db import session_scope
        from core.tenants import service as tenants

        with session_scope(Settings().database_url) as session:
            key = tenants.create_key(session=session, tenant_name="demo")
        client = Client(url, key)

        print(f"1/2 training a class-conditional DDPM on digits (16x16, {max_seconds:.0f} s)")
        train = client.submit(
            {
                "kind": "train",
                "engine": "ddpm",
                "dataset": "digits",
                "model_name": "digits-ddpm",
                # The engine's defaults for 16 px (a small UNet) learn legible digits on a
                # CPU in three minutes; the time budget, not a step count, ends the run.
                "config": {"max_seconds": max_seconds, "max_steps": 100_000, "image_size": 16},
            }
        )
        train = client.wait(train["id"], on_update=_show)
        print()
        if train["status"] != "succeeded":
            print(f"train job {train['status']}: {train.get('error')}")
            return 1
        version = train["result"]["model_version"]
        print(f"    registered {version['name']} v{version['version']}")

        print("2/2 generating 1,000 digits (100 per class) with DDIM, 50 steps")
        gen = client.submit(
            {
                "kind": "generate",
                "model": "digits-ddpm",
                "count": 1000,
                "seed": 0,
                "config": {"sampler": "ddim", "steps": 50, "guidance_scale": 2.0},
                "output_format": "imagefolder",
            }
        )
        gen = client.wait(gen["id"], on_update=_show)
        print()
        if gen["status"] != "succeeded":
            print(f"generate job {gen['status']}: {gen.get('error')}")
            return 1
        out = Path("synthgen-demo").resolve()
        for item in client.artifacts(gen["id"]):
            client.download(item["url"], out / item["name"])
        store = home / "store" / "jobs" / gen["id"]
        print(f"\nDone. Images:  {out / 'images.zip'}  (ImageFolder layout, 1,000 PNGs)")
        print(f"       Preview: {out / 'grid.png'}  (one row per digit class)")
        print(f"       In the embedded store: {store}")
        print(f"       API: {url}/docs   key: {key}")
        return 0
    finally:
        stack.terminate()
        stack.wait(timeout=30)
