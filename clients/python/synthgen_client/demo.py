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

from synthgen_client.cli.output import ProgressLine
from synthgen_client.embedded import check_port_free, embedded_env
from synthgen_client.sdk import Client

KEY_FILE = "api-key"


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


def _follow(client: Client, job_id: str) -> dict[str, Any]:
    line = ProgressLine(sys.stdout)
    try:
        return client.wait(job_id, on_update=line)
    finally:
        line.close()


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


DEMO_STEPS = 1500
"""The demo's training length: a fixed number of steps, so every machine trains the same
model and draws the same grid (a time budget gave a busy machine a third of the steps
and half-wrong digits); a slower machine takes longer, and the bar says how long."""


def run(home: Path, port: int, *, steps: int = DEMO_STEPS, count: int = 1000) -> int:
    home = home.resolve()
    check_port_free("127.0.0.1", port)
    env = {**os.environ, **embedded_env(home, port)}
    os.environ.update(embedded_env(home, port))
    url = f"http://127.0.0.1:{port}"
    stack = subprocess.Popen(  # noqa: S603 - our own CLI
        [
            sys.executable,
            "-m",
            "synthgen_client.cli",
            "up",
            "--home",
            str(home),
            "--port",
            str(port),
        ],
        env=env,
    )
    try:
        _wait_ready(url, stack)
        from core.config import Settings
        from core.db import session_scope
        from core.tenants import service as tenants

        with session_scope(Settings().database_url) as session:
            key = tenants.create_key(session=session, tenant_name="demo")
        # The key of the tenant that owns the demo model, left for the user: the README's
        # next steps read it, so they see the model this run trained.
        key_path = home / KEY_FILE
        key_path.write_text(key + "\n")
        key_path.chmod(0o600)
        client = Client(url, key)

        print(
            f"1/2 training a class-conditional DDPM on digits (16x16, {steps:,} steps; "
            "the bar shows the steps done and the time left)"
        )
        train = client.submit(
            {
                "kind": "train",
                "engine": "ddpm",
                "dataset": "digits",
                "model_name": "digits-ddpm",
                # The engine's defaults for 16 px (a small UNet) learn legible digits in
                # 1,500 steps: a step count, not a time budget, ends the run.
                "config": {"max_steps": steps, "image_size": 16},
            }
        )
        train = _follow(client, train["id"])
        if train["status"] != "succeeded":
            print(f"train job {train['status']}: {train.get('error')}")
            return 1
        version = train["result"]["model_version"]
        print(f"    registered {version['name']} v{version['version']}")

        print(f"2/2 generating {count:,} digits (an even share per class) with DDIM, 50 steps")
        gen = client.submit(
            {
                "kind": "generate",
                "model": "digits-ddpm",
                "count": count,
                "seed": 0,
                "config": {"sampler": "ddim", "steps": 50, "guidance_scale": 2.0},
                "output_format": "imagefolder",
            }
        )
        gen = _follow(client, gen["id"])
        if gen["status"] != "succeeded":
            print(f"generate job {gen['status']}: {gen.get('error')}")
            return 1
        out = Path("synthgen-demo").resolve()
        client.download_artifacts(gen["id"], out)  # raises unless count and sizes match
        store = home / "store" / "jobs" / gen["id"]
        print(f"\nDone. Images:  {out / 'images.zip'}  (ImageFolder layout, {count:,} PNGs)")
        print(f"       Preview: {out / 'grid.png'}  (one row per digit class)")
        print(f"       In the embedded store: {store}")
        print(f"\nThe model belongs to tenant 'demo'; its key is saved in {key_path}:")
        print(f"  export SYNTHGEN_API_KEY=$(cat {_shown(key_path)})")
        print("  .venv/bin/synthgen up &   # then: synthgen models, synthgen jobs list")
        return 0
    finally:
        stack.terminate()
        stack.wait(timeout=30)
