"""S3-compatible storage through boto3 (AWS, MinIO, SeaweedFS: any ``endpoint_url``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
from boto3.exceptions import Boto3Error
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from core.errors import StorageError
from core.storage.base import StoredObject, guess_content_type

_FAILED = (BotoCoreError, ClientError, Boto3Error)
"""What a call to the store raises when it fails. boto3's managed transfers (upload_file,
download_file) wrap a ClientError in their own S3UploadFailedError, and a download whose
stream keeps breaking ends in RetriesExceededError; neither is a botocore error. Missed,
an S3 answering 500 while it went down failed the job as an unexpected bug instead of a
StorageError (seen in the S3-down fault test)."""


def _code(exc: Exception) -> str | None:
    """The S3 error code of a failed call ("NoSuchKey", "500"...); None when no answer came."""
    return exc.response.get("Error", {}).get("Code") if isinstance(exc, ClientError) else None


class S3Storage:
    def __init__(
        self,
        *,
        bucket: str,
        prefix: str = "",
        endpoint_url: str | None = None,
        public_endpoint_url: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        region: str = "us-east-1",
        max_attempts: int = 5,
        connect_timeout_s: float = 10.0,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.max_attempts = max_attempts
        self._public_endpoint = public_endpoint_url or endpoint_url
        config = Config(
            signature_version="s3v4",
            # Standard mode retries throttling, 5xx and connection errors with
            # exponential backoff and jitter; past the attempts, a StorageError.
            retries={"max_attempts": max_attempts, "mode": "standard"},
            connect_timeout=connect_timeout_s,
            max_pool_connections=32,
        )
        credentials = {
            "aws_access_key_id": access_key_id,
            "aws_secret_access_key": secret_access_key,
            "region_name": region,
        }
        self._client: Any = boto3.client(
            "s3", endpoint_url=endpoint_url, config=config, **credentials
        )
        # Presigning is local arithmetic (SigV4 signs the host the URL names), so a
        # second client for the address clients use costs no connection; the server
        # checks the signature against the Host header the client sends.
        self._signer: Any = (
            boto3.client("s3", endpoint_url=public_endpoint_url, config=config, **credentials)
            if public_endpoint_url and public_endpoint_url != endpoint_url
            else self._client
        )

    def _error(self, action: str, key: str, exc: Exception) -> StorageError:
        return StorageError(
            f"could not {action} {key} in {self.max_attempts} attempts with backoff: {exc}"
        )

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _strip(self, full: str) -> str:
        return full[len(self.prefix) + 1 :] if self.prefix else full

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> StoredObject:
        ctype = content_type or guess_content_type(key)
        try:
            self._client.put_object(
                Bucket=self.bucket, Key=self._key(key), Body=data, ContentType=ctype
            )
        except _FAILED as exc:
            raise self._error("write", key, exc) from exc
        return StoredObject(key=key, size=len(data), content_type=ctype)

    def put_file(self, key: str, path: Path, content_type: str | None = None) -> StoredObject:
        ctype = content_type or guess_content_type(key)
        try:
            # upload_file streams and switches to multipart for large files.
            self._client.upload_file(
                str(path), self.bucket, self._key(key), ExtraArgs={"ContentType": ctype}
            )
        except _FAILED as exc:
            raise self._error("write", key, exc) from exc
        return StoredObject(key=key, size=path.stat().st_size, content_type=ctype)

    def get_bytes(self, key: str) -> bytes:
        try:
            body = self._client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
            return bytes(body.read())
        except _FAILED as exc:
            raise self._error("read", key, exc) from exc

    def get_file(self, key: str, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._client.download_file(self.bucket, self._key(key), str(path))
        except _FAILED as exc:
            raise self._error("read", key, exc) from exc

    def exists(self, key: str) -> bool:
        try:
            self._client.head_object(Bucket=self.bucket, Key=self._key(key))
        except _FAILED as exc:
            if _code(exc) in {"404", "NoSuchKey", "NotFound"}:
                return False
            raise self._error("stat", key, exc) from exc
        return True

    def list(self, prefix: str) -> list[StoredObject]:
        out: list[StoredObject] = []
        try:
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self._key(prefix)
            )
            for page in pages:
                for obj in page.get("Contents", []):
                    key = self._strip(obj["Key"])
                    out.append(StoredObject(key, int(obj["Size"]), guess_content_type(key)))
        except _FAILED as exc:
            raise self._error("list", prefix, exc) from exc
        return out

    def delete_prefix(self, prefix: str) -> None:
        keys = [{"Key": self._key(o.key)} for o in self.list(prefix)]
        try:
            for i in range(0, len(keys), 1000):
                self._client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": keys[i : i + 1000]}
                )
        except _FAILED as exc:
            raise self._error("delete", prefix, exc) from exc

    def presign(self, key: str, expires_s: int) -> str:
        return str(
            self._signer.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": self._key(key)},
                ExpiresIn=expires_s,
            )
        )

    def url_origin(self) -> str:
        # The host a presigned URL names depends on the addressing style botocore picks
        # (virtual host or path, which an unsigned client picks differently): presign
        # with throwaway credentials, so the answer needs none configured.
        probe: Any = boto3.client(
            "s3",
            endpoint_url=self._public_endpoint,
            region_name=self._signer.meta.region_name,
            config=self._signer.meta.config,
            aws_access_key_id="origin-probe",
            aws_secret_access_key="origin-probe",  # noqa: S106 - signs nothing that is sent
        )
        url = probe.generate_presigned_url(
            "put_object", Params={"Bucket": self.bucket, "Key": self._key("probe")}
        )
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc}"

    def presign_put(self, key: str, expires_s: int, *, size: int | None, max_bytes: int) -> str:
        # A declared size is signed as Content-Length, so S3 refuses any other body.
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(key)}
        if size is not None:
            params["ContentLength"] = size
        return str(
            self._signer.generate_presigned_url("put_object", Params=params, ExpiresIn=expires_s)
        )

    def start_multipart(self, key: str) -> str:
        try:
            started = self._client.create_multipart_upload(Bucket=self.bucket, Key=self._key(key))
        except _FAILED as exc:
            raise self._error("start an upload of", key, exc) from exc
        return str(started["UploadId"])

    def presign_part(self, key: str, upload_id: str, part_number: int, expires_s: int) -> str:
        params = {
            "Bucket": self.bucket,
            "Key": self._key(key),
            "UploadId": upload_id,
            "PartNumber": part_number,
        }
        return str(
            self._signer.generate_presigned_url("upload_part", Params=params, ExpiresIn=expires_s)
        )

    def complete_multipart(self, key: str, upload_id: str) -> int | None:
        where = {"Bucket": self.bucket, "Key": self._key(key), "UploadId": upload_id}
        try:
            parts = [
                part
                for page in self._client.get_paginator("list_parts").paginate(**where)
                for part in page.get("Parts", [])
            ]
            if not parts:
                return None
            self._client.complete_multipart_upload(
                **where,
                MultipartUpload={
                    "Parts": [{"PartNumber": p["PartNumber"], "ETag": p["ETag"]} for p in parts]
                },
            )
        except _FAILED as exc:
            raise self._error("complete the upload of", key, exc) from exc
        return sum(int(p["Size"]) for p in parts)

    def abort_multipart(self, key: str, upload_id: str) -> None:
        try:
            self._client.abort_multipart_upload(
                Bucket=self.bucket, Key=self._key(key), UploadId=upload_id
            )
        except _FAILED as exc:
            # An upload already completed or aborted has nothing left to abort.
            if _code(exc) != "NoSuchUpload":
                raise self._error("abort the upload of", key, exc) from exc

    def check(self) -> None:
        try:
            self._client.head_bucket(Bucket=self.bucket)
        except _FAILED as exc:
            raise StorageError(f"bucket {self.bucket!r} is not reachable: {exc}") from exc
