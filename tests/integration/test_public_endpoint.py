"""Presigned URLs name the address clients use (SYNTHGEN_S3_PUBLIC_ENDPOINT_URL) while the
services talk to S3 at their own: the compose stack's case, where the services reach
``seaweedfs:8333`` and a laptop reaches ``localhost:8333``. Here the two addresses are
127.0.0.1 and localhost, two names for one real SeaweedFS that checks signatures."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

import httpx

from core.config import Settings
from core.storage import from_settings
from tests.servers import SeaweedFS


def _storage(seaweedfs: SeaweedFS, public: str | None):
    bucket = f"pub-{secrets.token_hex(4)}"
    seaweedfs.create_bucket(bucket)
    settings = Settings(
        storage_url=f"s3://{bucket}/data",
        s3_endpoint_url=seaweedfs.endpoint,
        s3_public_endpoint_url=public,
        aws_access_key_id=seaweedfs.access_key,
        aws_secret_access_key=seaweedfs.secret_key,
    )
    return from_settings(settings)


def test_downloads_and_uploads_are_signed_for_the_public_address(seaweedfs: SeaweedFS):
    public = f"http://localhost:{seaweedfs.s3_port}"
    store = _storage(seaweedfs, public)
    store.put_bytes("jobs/j1/grid.png", b"\x89PNG-bytes")

    url = store.presign("jobs/j1/grid.png", 60)
    assert urlsplit(url).netloc == f"localhost:{seaweedfs.s3_port}"
    got = httpx.get(url)
    assert got.status_code == 200 and got.content == b"\x89PNG-bytes"

    put = store.presign_put("uploads/u1/data.zip", 60, size=5, max_bytes=100)
    assert urlsplit(put).netloc == f"localhost:{seaweedfs.s3_port}"
    assert httpx.put(put, content=b"hello").status_code == 200
    # The services read what the client uploaded through their own address.
    assert store.get_bytes("uploads/u1/data.zip") == b"hello"


def test_a_url_signed_for_one_host_is_refused_at_another(seaweedfs: SeaweedFS):
    """SigV4 signs the Host header: why presigning for the public name is needed at all
    (a URL for seaweedfs:8333 cannot be rewritten to localhost by the client)."""
    store = _storage(seaweedfs, None)
    store.put_bytes("k.txt", b"x")
    url = store.presign("k.txt", 60)
    assert urlsplit(url).netloc == f"127.0.0.1:{seaweedfs.s3_port}"
    moved = url.replace("127.0.0.1", "localhost", 1)
    assert httpx.get(url).status_code == 200
    assert httpx.get(moved).status_code == 403
