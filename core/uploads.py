"""Where a client sends the bytes of an upload (a dataset archive, a model archive).

The API never carries them itself when it can avoid it: on S3 the client PUTs to a
presigned URL, or, for declared sizes over ``upload_multipart_threshold``, PUTs parts to
presigned part URLs of an S3 multipart upload; on the local store (the embedded stack)
the URL is the API's own signed ``PUT /v1/uploads/{key}``. ``received`` then tells
whether the bytes arrived (joining the parts of a multipart upload).

A row that takes an upload has :class:`UploadColumns`.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field
from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from core.config import Settings
from core.db import utcnow
from core.errors import InvalidRequest
from core.storage import Storage
from core.storage.base import MultipartStorage

MAX_PARTS = 10_000  # S3's limit on the parts of one upload


class UploadColumns:
    """Mixin: the storage key the client uploads to, the S3 multipart upload id when the
    upload is in parts, and the size the client declared (None: not declared)."""

    upload_key: Mapped[str] = mapped_column(String(1000))
    multipart_id: Mapped[str | None] = mapped_column(String(1000), default=None)
    declared_size: Mapped[int | None] = mapped_column(BigInteger, default=None)


class UploadPart(BaseModel):
    part_number: int
    url: str


class UploadOut(BaseModel):
    """How to send the bytes: one ``PUT`` of the whole file to ``url``, or (``multipart``)
    the file cut in ``part_size`` pieces, piece i PUT to ``parts[i].url``. Then POST the
    ``complete`` URL."""

    method: Literal["PUT", "multipart"]
    url: str | None = None
    part_size: int | None = None
    parts: list[UploadPart] = Field(default_factory=list)
    max_bytes: int
    expires_at: datetime


def check_declared_size(size: int | None, limit: int, limit_name: str) -> None:
    """Refuse a declared ``size`` over ``limit`` (422 naming ``size``) before anything is
    written; ``limit_name`` says which limit ("upload", "import")."""
    if size is not None and size > limit:
        raise InvalidRequest(
            f"size: {size} bytes is over the {limit_name} limit of {limit} bytes", field="size"
        )


def start(*, storage: Storage, settings: Settings, key: str, size: int | None) -> str | None:
    """The multipart upload id when this upload goes in parts, else None (one PUT)."""
    if (
        size is not None
        and size > settings.upload_multipart_threshold
        and isinstance(storage, MultipartStorage)
    ):
        return storage.start_multipart(key)
    return None


def part_size(settings: Settings, size: int) -> int:
    """``upload_part_bytes``, grown when the file would need more than S3's 10,000 parts."""
    return max(settings.upload_part_bytes, math.ceil(size / MAX_PARTS))


def target(
    *,
    storage: Storage,
    settings: Settings,
    row: UploadColumns,
    max_bytes: int,
) -> UploadOut:
    """Fresh URLs for ``row``'s upload (asked again, e.g. after they expired)."""
    ttl = settings.upload_url_ttl_s
    expires_at = utcnow() + timedelta(seconds=ttl)
    if row.multipart_id is not None and isinstance(storage, MultipartStorage):
        assert row.declared_size is not None  # noqa: S101 - multipart only with a size
        piece = part_size(settings, row.declared_size)
        parts = [
            UploadPart(
                part_number=n,
                url=storage.presign_part(row.upload_key, row.multipart_id, n, ttl),
            )
            for n in range(1, math.ceil(row.declared_size / piece) + 1)
        ]
        return UploadOut(
            method="multipart",
            part_size=piece,
            parts=parts,
            max_bytes=max_bytes,
            expires_at=expires_at,
        )
    url = storage.presign_put(row.upload_key, ttl, size=row.declared_size, max_bytes=max_bytes)
    return UploadOut(method="PUT", url=url, max_bytes=max_bytes, expires_at=expires_at)


def received(*, storage: Storage, row: UploadColumns) -> int | None:
    """The size of what arrived at ``row.upload_key`` (joining a multipart upload's parts
    first), or None when nothing did."""
    if row.multipart_id is not None and isinstance(storage, MultipartStorage):
        size = storage.complete_multipart(row.upload_key, row.multipart_id)
        if size is not None:
            row.multipart_id = None
        return size
    found = [obj for obj in storage.list(row.upload_key) if obj.key == row.upload_key]
    return found[0].size if found else None


def discard(*, storage: Storage, row: UploadColumns) -> None:
    """Drop an unfinished multipart upload, so S3 stops keeping its parts."""
    if row.multipart_id is not None and isinstance(storage, MultipartStorage):
        storage.abort_multipart(row.upload_key, row.multipart_id)
