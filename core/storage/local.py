"""A local directory as object storage, for the embedded stack.

Download URLs are signed like S3's presigned URLs (HMAC over key and expiry), and served
by the API's ``/v1/files/{key}`` route, so a URL works without an API key until it expires.
Upload URLs are signed the same way over the method, the size allowed and the expiry, and
taken by the API's ``PUT /v1/uploads/{key}`` route.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import shutil
import time
from pathlib import Path
from urllib.parse import quote, urlsplit

from core.errors import StorageError
from core.storage.base import StoredObject, guess_content_type


def sign(secret: str, key: str, expires: int) -> str:
    return hmac.new(secret.encode(), f"{key}\n{expires}".encode(), hashlib.sha256).hexdigest()


def sign_put(secret: str, key: str, expires: int, size: int | None, max_bytes: int) -> str:
    # "PUT" first: a download signature can never be replayed as an upload one.
    message = f"PUT\n{key}\n{expires}\n{size if size is not None else ''}\n{max_bytes}"
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


class LocalStorage:
    def __init__(self, *, root: str | Path, public_url: str, signing_secret: str) -> None:
        self.root = Path(root).resolve()
        self.public_url = public_url.rstrip("/")
        self.signing_secret = signing_secret

    def path_of(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise StorageError(f"key {key!r} escapes the storage root")
        return path

    def _write(self, key: str, source: bytes | Path) -> Path:
        path = self.path_of(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        # Write then rename, so a reader never sees half a file.
        if isinstance(source, bytes):
            tmp.write_bytes(source)
        else:
            shutil.copyfile(source, tmp)
        os.replace(tmp, path)
        return path

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> StoredObject:
        self._write(key, data)
        return StoredObject(key, len(data), content_type or guess_content_type(key))

    def put_file(self, key: str, path: Path, content_type: str | None = None) -> StoredObject:
        dest = self._write(key, path)
        return StoredObject(key, dest.stat().st_size, content_type or guess_content_type(key))

    def get_bytes(self, key: str) -> bytes:
        try:
            return self.path_of(key).read_bytes()
        except OSError as exc:
            raise StorageError(f"could not read {key}: {exc.strerror}") from exc

    def get_file(self, key: str, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copyfile(self.path_of(key), path)
        except OSError as exc:
            raise StorageError(f"could not read {key}: {exc.strerror}") from exc

    def exists(self, key: str) -> bool:
        return self.path_of(key).is_file()

    def list(self, prefix: str) -> list[StoredObject]:
        base = self.path_of(prefix) if prefix else self.root
        start = base if base.is_dir() else base.parent
        out = []
        for path in sorted(start.rglob("*")) if start.exists() else []:
            key = path.relative_to(self.root).as_posix()
            if path.is_file() and key.startswith(prefix) and ".tmp" not in path.name:
                out.append(StoredObject(key, path.stat().st_size, guess_content_type(key)))
        return out

    def delete_prefix(self, prefix: str) -> None:
        for obj in self.list(prefix):
            self.path_of(obj.key).unlink(missing_ok=True)

    def presign(self, key: str, expires_s: int) -> str:
        expires = int(time.time()) + expires_s
        sig = sign(self.signing_secret, key, expires)
        return f"{self.public_url}/v1/files/{quote(key)}?expires={expires}&signature={sig}"

    def verify(self, key: str, expires: int, signature: str) -> bool:
        if expires < time.time():
            return False
        return hmac.compare_digest(sign(self.signing_secret, key, expires), signature)

    def presign_put(self, key: str, expires_s: int, *, size: int | None, max_bytes: int) -> str:
        expires = int(time.time()) + expires_s
        sig = sign_put(self.signing_secret, key, expires, size, max_bytes)
        sized = f"&size={size}" if size is not None else ""
        return (
            f"{self.public_url}/v1/uploads/{quote(key)}?expires={expires}{sized}"
            f"&max_bytes={max_bytes}&signature={sig}"
        )

    def url_origin(self) -> str:
        parts = urlsplit(self.public_url)
        return f"{parts.scheme}://{parts.netloc}"

    def verify_put(
        self, key: str, expires: int, size: int | None, max_bytes: int, signature: str
    ) -> bool:
        if expires < time.time():
            return False
        expected = sign_put(self.signing_secret, key, expires, size, max_bytes)
        return hmac.compare_digest(expected, signature)

    def check(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"storage root {self.root} is not writable: {exc}") from exc
        if not os.access(self.root, os.W_OK):
            raise StorageError(f"storage root {self.root} is not writable")
