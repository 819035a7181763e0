"""A ready dataset's thumbnail (a grid of some of its images) is ``urls.thumbnail``; the
same URL stays under ``urls.preview``, its first name. "Preview" alone is the
playground's grid drawn from a model."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from core.datasets import lookup
from core.datasets import service as datasets
from core.db import session_scope
from tests import archives, embedded_api


@pytest.fixture()
def api(tmp_path):
    settings = embedded_api.settings(tmp_path)
    with embedded_api.client(settings) as client:
        yield client, settings


def test_a_ready_datasets_thumbnail_is_named_so_and_keeps_its_first_name(api):
    client, settings = api
    dataset = client.post("/v1/datasets", json={"name": "d", "format": "zip"}).json()
    assert "thumbnail" not in dataset["urls"] and "preview" not in dataset["urls"]
    upload = urlsplit(dataset["upload"]["url"])
    data = archives.zip_bytes(archives.imagefolder_files(2))
    sent = client.put(f"{upload.path}?{upload.query}", content=data)
    assert sent.status_code == 200, sent.text
    assert client.post(f"/v1/datasets/{dataset['id']}/complete").status_code == 200
    with session_scope(settings.database_url) as session:
        assert datasets.mark_ready(session=session, dataset_id=dataset["id"], sha256="0" * 64,
                                   summary={})  # fmt: skip
    urls = client.get(f"/v1/datasets/{dataset['id']}").json()["urls"]
    assert urls["thumbnail"] == urls["preview"]
    assert urlsplit(urls["thumbnail"]).path.endswith(lookup.thumbnail_key(dataset["id"]))


def test_the_thumbnail_key_is_where_validation_has_always_written_it():
    assert lookup.thumbnail_key("abc") == "datasets/abc/preview.png"
    assert datasets.thumbnail_key is lookup.thumbnail_key
