"""Uploads on the embedded stack: the file goes to the API's own signed URL, the worker
child validates it on the cpu queue, and a train job uses it."""

from __future__ import annotations

import time

import httpx

from tests import archives


def test_embedded_stack_takes_an_upload_and_trains_on_it(stack):
    url, key, home = stack
    headers = {"Authorization": f"Bearer {key}"}
    data = archives.zip_bytes(archives.imagefolder_files(5))
    created = httpx.post(
        f"{url}/v1/datasets", json={"name": "mine", "format": "zip"}, headers=headers
    ).json()
    assert created["upload"]["url"].startswith(f"{url}/v1/uploads/")
    assert httpx.put(created["upload"]["url"], content=data).status_code == 200
    httpx.post(f"{url}/v1/datasets/{created['id']}/complete", headers=headers).raise_for_status()
    deadline = time.monotonic() + 120
    while (dataset := httpx.get(f"{url}/v1/datasets/{created['id']}", headers=headers).json())[
        "status"
    ] == "validating":
        assert time.monotonic() < deadline
        time.sleep(0.3)
    assert dataset["status"] == "ready", dataset["error"]
    assert (home / "store" / "datasets" / created["id"] / "data.npz").is_file()

    job = httpx.post(
        f"{url}/v1/jobs",
        headers=headers,
        json={"kind": "train", "engine": "ddpm", "dataset": created["id"], "model_name": "m",
              "config": {"max_steps": 2, "batch_size": 4, "base_channels": 16}},
    ).json()  # fmt: skip
    deadline = time.monotonic() + 240
    while (done := httpx.get(f"{url}/v1/jobs/{job['id']}", headers=headers).json())[
        "status"
    ] not in {"succeeded", "failed"}:
        assert time.monotonic() < deadline
        time.sleep(0.3)
    assert done["status"] == "succeeded", done["error"]
    lineage = httpx.get(f"{url}/v1/models/m/versions/1/lineage", headers=headers).json()
    assert lineage["dataset"]["sha256"] == dataset["sha256"]
