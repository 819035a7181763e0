"""Uploading as a client does: create, send the bytes where the answer says (one PUT, or
the parts of a multipart upload), complete, and poll until the work is done."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx

from tests.integration.conftest import TenantClient

SETTLED_DATASET = {"ready", "invalid"}
SETTLED_IMPORT = {"registered", "invalid"}


def send(upload: dict[str, Any], data: bytes) -> None:
    if upload["method"] == "PUT":
        response = httpx.put(upload["url"], content=data)
        assert response.status_code == 200, response.text
        return
    size = upload["part_size"]
    for part in upload["parts"]:
        start = (part["part_number"] - 1) * size
        response = httpx.put(part["url"], content=data[start : start + size])
        assert response.status_code == 200, response.text


def poll(tenant: TenantClient, path: str, done: set[str], timeout_s: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        body = tenant.get(path).json()
        if body["status"] in done:
            return body  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, f"stuck in {body['status']}: {body}"
        time.sleep(0.25)


def upload_dataset(
    tenant: TenantClient, data: bytes, fmt: str, name: str | None = None, **fields: Any
) -> dict[str, Any]:
    """Create, upload, complete and wait: the dataset once ready or invalid. Names are
    unique per tenant: left out, each upload gets one of its own."""
    name = name or f"set-{uuid.uuid4().hex[:8]}"
    created = tenant.post("/v1/datasets", json={"name": name, "format": fmt, **fields})
    assert created.status_code == 201, created.text
    body = created.json()
    send(body["upload"], data)
    completed = tenant.post(f"/v1/datasets/{body['id']}/complete")
    assert completed.status_code == 200, completed.text
    assert completed.json()["status"] == "validating"
    return poll(tenant, f"/v1/datasets/{body['id']}", SETTLED_DATASET)


def import_archive(tenant: TenantClient, data: bytes, model_name: str, fmt: str) -> dict[str, Any]:
    """Create an import, upload the archive, complete and wait."""
    created = tenant.post(
        "/v1/imports", json={"model_name": model_name, "format": fmt, "size": len(data)}
    )
    assert created.status_code == 201, created.text
    body = created.json()
    send(body["upload"], data)
    completed = tenant.post(f"/v1/imports/{body['id']}/complete")
    assert completed.status_code == 200, completed.text
    return poll(tenant, f"/v1/imports/{body['id']}", SETTLED_IMPORT)
