import time
from urllib.parse import parse_qs, urlparse

import pytest

from core.errors import StorageError
from core.storage import LocalStorage


@pytest.fixture()
def store(tmp_path):
    return LocalStorage(root=tmp_path, public_url="http://h:1", signing_secret="s")


def test_put_get_list_round_trip(store, tmp_path):
    store.put_bytes("jobs/a/x.png", b"abc")
    src = tmp_path / "src.bin"
    src.write_bytes(b"12345")
    obj = store.put_file("jobs/a/m/w.safetensors", src)
    assert obj.size == 5
    assert store.get_bytes("jobs/a/x.png") == b"abc"
    assert [o.key for o in store.list("jobs/a/")] == ["jobs/a/m/w.safetensors", "jobs/a/x.png"]
    assert store.list("jobs/a/x.png")[0].content_type == "image/png"
    store.delete_prefix("jobs/a/m")
    assert [o.key for o in store.list("jobs/")] == ["jobs/a/x.png"]


def test_presigned_url_verifies_until_it_expires(store):
    url = urlparse(store.presign("jobs/a/x.png", 60))
    q = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert url.path == "/v1/files/jobs/a/x.png"
    assert store.verify("jobs/a/x.png", int(q["expires"]), q["signature"])
    assert not store.verify("jobs/a/other.png", int(q["expires"]), q["signature"])
    assert not store.verify("jobs/a/x.png", int(time.time()) - 1, q["signature"])


def test_keys_cannot_escape_the_root(store):
    with pytest.raises(StorageError):
        store.put_bytes("../outside", b"x")
