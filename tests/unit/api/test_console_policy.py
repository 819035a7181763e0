"""The console's Content-Security-Policy lets the datasets page send a file to the upload
URLs the store signs (the API itself on the local store, the S3 endpoint clients reach)
and nowhere else."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi.testclient import TestClient

from api.main import create_app
from core.storage.s3 import S3Storage
from tests import embedded_api


def _connect_src(policy: str) -> list[str]:
    directive = next(d.strip() for d in policy.split(";") if "connect-src" in d)
    return directive.split()[1:]


def test_the_console_may_connect_to_the_api_and_the_local_stores_upload_urls(tmp_path):
    settings = embedded_api.settings(tmp_path, public_url="http://127.0.0.1:8765")
    with TestClient(create_app(settings)) as client:
        policy = client.get("/console/").headers["content-security-policy"]
    assert _connect_src(policy) == ["'self'", "http://127.0.0.1:8765"]


def test_an_s3_stores_upload_origin_is_the_host_its_presigned_urls_name():
    public = S3Storage(
        bucket="b",
        endpoint_url="http://seaweedfs:8333",
        public_endpoint_url="http://localhost:8333",
        access_key_id="k",
        secret_access_key="s",  # noqa: S106 - a test value
    )
    aws = S3Storage(
        bucket="my-bucket",
        region="eu-west-1",
        access_key_id="k",
        secret_access_key="s",  # noqa: S106
    )
    for store in (public, aws):
        url = urlsplit(store.presign_put("datasets/x/upload", 60, size=None, max_bytes=1))
        assert store.url_origin() == f"{url.scheme}://{url.netloc}"
    assert public.url_origin() == "http://localhost:8333"
