"""Preview latency (16 images at 16x16, warm worker vs cold) and the console's first load,
on the embedded stack (`synthgen up`: SQLite, the local store, the SQLite broker).

    .venv/bin/python bench/console.py [--requests 30]

Warm: the preview worker has the model loaded (the same version every request). Cold:
the worker keeps one model (SYNTHGEN_PREVIEW_CACHE_MODELS=1) and requests alternate
between two versions, so every request downloads and rebuilds the model. First: the first
preview after the worker started. Console: bytes the first load transfers, and the time
from navigation until the sign-in form is interactive and until the jobs table shows.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e import conftest as e2e  # noqa: E402

TRAIN = {
    "kind": "train",
    "engine": "ddpm",
    "dataset": "digits",
    "model_name": "bench",
    "config": {"max_steps": 20, "batch_size": 16, "image_size": 16, "base_channels": 16},
}
PREVIEW = {"labels": [0, 1, 2, 3], "count": 16, "seed": 0}  # 4 rows of 4, default 50 steps


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def timed_preview(client: httpx.Client, ref: str) -> tuple[float, str]:
    start = time.perf_counter()
    response = client.post(f"/v1/models/{ref}/preview", json=PREVIEW, timeout=120)
    elapsed = time.perf_counter() - start
    assert response.status_code == 200, response.text
    return elapsed, response.headers["X-Preview-Cache"]


def wait(client: httpx.Client, job_id: str) -> None:
    while client.get(f"/v1/jobs/{job_id}").json()["status"] not in {"succeeded", "failed"}:
        time.sleep(0.5)


def console_load(url: str, key: str, rounds: int = 5) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=shutil.which("chromium"), headless=True,
            args=["--no-sandbox", "--disable-gpu"],
        )  # fmt: skip
        sizes, ready, jobs = [], [], []
        for _ in range(rounds):
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            page = context.new_page()
            transferred: list[int] = []
            page.on("response", lambda r, sink=transferred: sink.append(len(r.body())))
            start = time.perf_counter()
            page.goto(f"{url}/console/")
            page.wait_for_selector("#sign-in:not([hidden])")
            ready.append(time.perf_counter() - start)
            sizes.append(sum(transferred))
            page.fill("#api-key", key)
            start = time.perf_counter()
            page.press("#api-key", "Enter")
            page.wait_for_selector("#jobs-table tbody tr")
            jobs.append(time.perf_counter() - start)
            context.close()
        browser.close()
    return {
        "first_load_bytes": statistics.median(sizes),
        "sign_in_interactive_s": statistics.median(ready),
        "jobs_table_after_sign_in_s": statistics.median(jobs),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-console-"))
    stack = e2e.start_stack(base, env={"SYNTHGEN_PREVIEW_CACHE_MODELS": "1"})
    try:
        client = httpx.Client(base_url=stack.url, headers={"Authorization": f"Bearer {stack.key}"})
        for _ in range(2):
            wait(client, client.post("/v1/jobs", json=TRAIN).json()["id"])
        first, _ = timed_preview(client, "bench:1")
        warm = [timed_preview(client, "bench:1") for _ in range(args.requests)]
        cold = [timed_preview(client, f"bench:{1 + i % 2}") for i in range(1, args.requests + 1)]
        assert all(hit == "hit" for _, hit in warm) and all(hit == "miss" for _, hit in cold)
        result = {
            "preview": {
                "images": 16,
                "image_size": 16,
                "engine": "ddpm (50 DDIM steps)",
                "first_after_start_s": round(first, 3),
                "warm_p50_s": round(percentile([t for t, _ in warm], 0.5), 3),
                "warm_p99_s": round(percentile([t for t, _ in warm], 0.99), 3),
                "cold_p50_s": round(percentile([t for t, _ in cold], 0.5), 3),
                "cold_p99_s": round(percentile([t for t, _ in cold], 0.99), 3),
                "requests": args.requests,
            },
            "console": console_load(stack.url, stack.key),
        }
        print(json.dumps(result, indent=2))
        out = ROOT / "bench" / "results" / "console-bench.json"
        out.write_text(json.dumps(result, indent=2) + "\n")
    finally:
        e2e.stop_stack(stack)


if __name__ == "__main__":
    main()
