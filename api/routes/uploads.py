"""``PUT /v1/uploads/{key}``: the upload URL of the local store (the embedded stack).

S3 takes uploads itself at presigned URLs; the local store has no server of its own, so
the API takes the bytes at a URL it signed (core/storage/local.py), streaming them to a
temporary file that becomes the object only when the whole body arrived within the size
the URL allows. Exempt from the API's body limit, which is for JSON requests.
"""

from __future__ import annotations

import os
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from api.deps import StorageDep
from api.errors import problem
from core.errors import ArtifactNotFound
from core.storage import LocalStorage

router = APIRouter(tags=["uploads"])
PREFIX = "/v1/uploads/"


@router.put(PREFIX + "{key:path}", include_in_schema=False)
async def upload(
    key: str,
    request: Request,
    storage: StorageDep,
    expires: Annotated[int, Query()],
    max_bytes: Annotated[int, Query(ge=0)],
    signature: Annotated[str, Query(max_length=128)],
    size: Annotated[int | None, Query(ge=0)] = None,
) -> Response:
    if not isinstance(storage, LocalStorage) or not storage.verify_put(
        key, expires, size, max_bytes, signature
    ):
        raise ArtifactNotFound("this upload link is invalid or has expired")
    limit = size if size is not None else max_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return _too_large(request, limit)
    path = storage.path_of(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".tmp-upload")
    received = 0
    try:
        with partial.open("wb") as out:
            async for chunk in request.stream():
                received += len(chunk)
                if received > limit:
                    return _too_large(request, limit)
                out.write(chunk)
        if size is not None and received != size:
            return problem(
                400,
                "Incomplete upload",
                f"this URL takes exactly {size} bytes; {received} arrived",
                request,
            )
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return Response(status_code=status.HTTP_200_OK)


def _too_large(request: Request, limit: int) -> Response:
    return problem(
        413, "Request too large", f"this upload URL takes at most {limit} bytes", request
    )
