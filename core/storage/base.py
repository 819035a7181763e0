"""The Storage seam: put/get/list/presign over keys like ``jobs/{job_id}/grid.png``."""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    content_type: str


def guess_content_type(key: str) -> str:
    if key.endswith(".safetensors") or key.endswith(".npz"):
        return "application/octet-stream"
    return mimetypes.guess_type(key)[0] or "application/octet-stream"


@runtime_checkable
class Storage(Protocol):
    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> StoredObject: ...

    def put_file(self, key: str, path: Path, content_type: str | None = None) -> StoredObject: ...

    def get_bytes(self, key: str) -> bytes: ...

    def get_file(self, key: str, path: Path) -> None: ...

    def exists(self, key: str) -> bool: ...

    def list(self, prefix: str) -> list[StoredObject]: ...

    def delete_prefix(self, prefix: str) -> None: ...

    def presign(self, key: str, expires_s: int) -> str:
        """A URL that downloads ``key`` without further credentials until it expires."""
        ...

    def presign_put(self, key: str, expires_s: int, *, size: int | None, max_bytes: int) -> str:
        """A URL that accepts one HTTP PUT of ``key``'s bytes until it expires: exactly
        ``size`` bytes when given; the local store also refuses more than ``max_bytes``
        (S3 cannot, so the reader of an upload checks its size again)."""
        ...

    def url_origin(self) -> str:
        """``scheme://host[:port]`` of the URLs ``presign``/``presign_put`` name: where a
        browser page (the console) sends uploads, so its Content-Security-Policy allows it."""
        ...

    def check(self) -> None:
        """Raise StorageError when the store cannot be reached (for /readyz)."""
        ...


@runtime_checkable
class MultipartStorage(Protocol):
    """A store that takes one object in parts, each PUT to its own presigned URL (S3's
    multipart upload): for uploads too large for one request."""

    def start_multipart(self, key: str) -> str:
        """Begin an upload of ``key``; returns its upload id."""
        ...

    def presign_part(self, key: str, upload_id: str, part_number: int, expires_s: int) -> str: ...

    def complete_multipart(self, key: str, upload_id: str) -> int | None:
        """Join the parts received so far (listed by the store, in order); returns the
        size, or None when no part has arrived (the upload stays open)."""
        ...

    def abort_multipart(self, key: str, upload_id: str) -> None: ...
