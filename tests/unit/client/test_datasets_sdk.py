"""The SDK's ``datasets`` namespace against a stand-in API: an upload is create, send,
complete and wait, with progress; a dataset is found by its name or its id."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from synthgen_client.resources import guess_format
from synthgen_client.sdk import Client

DS = "ds_" + "a" * 32


class FakeApi:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.received = b""
        self.reads = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(f"{request.method} {request.url.path}")
        path = request.url.path
        if request.method == "POST" and path == "/v1/datasets":
            body = json.loads(request.content)
            assert body == {"name": "signs", "format": "zip", "size": 10, "test_fraction": 0.5}
            upload = {"method": "PUT", "url": "http://store.test/put"}
            return httpx.Response(201, json={"id": DS, "upload": upload})
        if request.method == "PUT":
            self.received = request.content
            assert "authorization" not in request.headers  # a signed URL, sent bare
            return httpx.Response(200)
        if path == f"/v1/datasets/{DS}/complete":
            return httpx.Response(200, json={"id": DS, "status": "validating"})
        if path == f"/v1/datasets/{DS}":
            self.reads += 1
            status = "validating" if self.reads == 1 else "ready"
            return httpx.Response(
                200, json={"id": DS, "name": "signs", "status": status, "validation_job": "j1"}
            )
        if path == "/v1/jobs/j1":
            return httpx.Response(200, json={"id": "j1", "progress": {"step": 3, "total": 6}})
        if path == "/v1/datasets":
            return httpx.Response(
                200, json={"items": [{"id": DS, "name": "signs"}], "next_cursor": None}
            )
        return httpx.Response(404, json={"title": "Not found"})


@pytest.fixture
def api() -> tuple[Client, FakeApi]:
    fake = FakeApi()
    client = Client("http://api.test", "sg_key")
    transport = httpx.MockTransport(fake)
    client.http = httpx.Client(
        transport=transport, base_url="http://api.test", headers={"Authorization": "Bearer k"}
    )
    client.downloads = httpx.Client(transport=transport)
    return client, fake


def test_upload_creates_sends_completes_and_waits_for_validation(api, tmp_path: Path):
    client, fake = api
    archive = tmp_path / "signs.zip"
    archive.write_bytes(b"0123456789")
    seen: list[tuple[str, int, int]] = []
    dataset = client.datasets.upload(
        archive, name="signs", test_fraction=0.5, on_progress=lambda *a: seen.append(a)
    )
    assert dataset["status"] == "ready"
    assert fake.received == b"0123456789"
    assert fake.calls[:3] == ["POST /v1/datasets", "PUT /put", f"POST /v1/datasets/{DS}/complete"]
    assert seen == [("upload", 10, 10), ("validate", 3, 6)]


def test_a_dataset_is_found_by_name_or_id(api):
    client, _ = api
    assert client.datasets.get("signs")["id"] == DS
    assert client.datasets.get(DS)["id"] == DS
    assert client.datasets.names() == {DS: "signs"}
    with pytest.raises(LookupError, match="no dataset named 'nope'"):
        client.datasets.get("nope")


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("a.zip", "zip"),
        ("a.tar.gz", "tar"),
        ("a.TGZ", "tar"),
        ("a.npz", "npz"),
        ("b.bin", "cifar"),
        ("train-00000.parquet", "parquet"),
    ],  # fmt: skip
)
def test_the_format_is_read_from_the_files_name(name, fmt):
    assert guess_format(Path(name)) == fmt


def test_an_unknown_suffix_asks_for_the_format():
    with pytest.raises(ValueError, match="pass the format"):
        guess_format(Path("data.csv"))
