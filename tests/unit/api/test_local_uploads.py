"""The embedded stack's upload URL: the API takes the bytes itself at a URL it signed,
within the size the URL allows, past the API's body limit for JSON."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from tests import archives, embedded_api


@pytest.fixture()
def api(tmp_path):
    with embedded_api.client(embedded_api.settings(tmp_path, max_body_bytes=10_000)) as client:
        yield client, tmp_path / "store"


def upload_path(upload: dict) -> str:
    parts = urlsplit(upload["url"])
    return f"{parts.path}?{parts.query}"


def create(client, **fields) -> dict:
    response = client.post("/v1/datasets", json={"name": "d", "format": "zip", **fields})
    assert response.status_code == 201, response.text
    return response.json()


def test_upload_goes_to_the_api_and_lands_in_the_store(api):
    client, store = api
    dataset = create(client)
    assert dataset["upload"]["method"] == "PUT"
    assert urlsplit(dataset["upload"]["url"]).path.startswith("/v1/uploads/datasets/")
    data = archives.zip_bytes(
        {**archives.imagefolder_files(2), "circle/n.png": archives.noise_png(64)}
    )
    assert len(data) > 10_000  # more than the JSON body limit
    response = client.put(
        upload_path(dataset["upload"]), content=data, headers={"Authorization": ""}
    )
    assert response.status_code == 200, response.text
    assert (store / "datasets" / dataset["id"] / "upload" / "original").read_bytes() == data
    completed = client.post(f"/v1/datasets/{dataset['id']}/complete").json()
    assert completed["status"] == "validating" and completed["size"] == len(data)


def test_a_tampered_upload_url_is_refused(api):
    client, store = api
    path = upload_path(create(client)["upload"]).replace("signature=", "signature=0")
    assert client.put(path, content=b"x").status_code == 404
    assert not list(store.rglob("original"))


def test_more_than_the_declared_size_is_refused_and_nothing_kept(api):
    client, store = api
    dataset = create(client, size=100)
    response = client.put(upload_path(dataset["upload"]), content=b"x" * 101)
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert not [p for p in store.rglob("*") if p.is_file()]


def test_fewer_than_the_declared_bytes_are_refused(api):
    client, _ = api
    dataset = create(client, size=100)
    response = client.put(upload_path(dataset["upload"]), content=b"x" * 99)
    assert response.status_code == 400
    assert client.post(f"/v1/datasets/{dataset['id']}/complete").status_code == 409
