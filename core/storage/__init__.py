"""Object storage: S3 (any endpoint) or a local directory, chosen by ``STORAGE_URL``."""

from __future__ import annotations

from core.config import Settings
from core.storage.base import Storage, StoredObject
from core.storage.local import LocalStorage
from core.storage.s3 import S3Storage

__all__ = ["LocalStorage", "S3Storage", "Storage", "StoredObject", "from_settings"]


def from_settings(settings: Settings) -> Storage:
    url = settings.storage_url
    if url.startswith("s3://"):
        bucket, _, prefix = url[len("s3://") :].partition("/")
        return S3Storage(
            bucket=bucket,
            prefix=prefix,
            endpoint_url=settings.s3_endpoint_url,
            public_endpoint_url=settings.s3_public_endpoint_url,
            access_key_id=settings.aws_access_key_id,
            secret_access_key=settings.aws_secret_access_key,
            region=settings.aws_region,
            max_attempts=settings.storage_max_attempts,
            connect_timeout_s=settings.storage_connect_timeout_s,
        )
    if url.startswith("file://"):
        return LocalStorage(
            root=url[len("file://") :],
            public_url=settings.public_url,
            signing_secret=settings.url_signing_secret,
        )
    raise ValueError(f"SYNTHGEN_STORAGE_URL must start with s3:// or file://, got {url!r}")
