"""Every S3 call that fails raises StorageError, whichever layer of boto3 gives it up.

Two faults a store going down shows, served by real sockets on loopback: an S3 endpoint
answering every request 500 InternalError (what SeaweedFS answered while it stopped in
the S3-down fault test; boto3's managed upload wraps that in its own S3UploadFailedError),
and a port nobody listens on (botocore's EndpointConnectionError). A job that meets
either must fail with a StorageError saying what failed, not as an unexpected bug.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from core.errors import StorageError
from core.storage.s3 import S3Storage

ERROR_BODY = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code>'
    b"<Message>We encountered an internal error, please try again.</Message></Error>"
)


class _Failing(BaseHTTPRequestHandler):
    def _fail(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.send_response(500)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(ERROR_BODY)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(ERROR_BODY)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _fail  # noqa: N815 - http.server's names

    def log_message(self, *args: object) -> None:  # keep the test output clean
        pass


@pytest.fixture(scope="module")
def failing_endpoint() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Failing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def closed_endpoint() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _store(endpoint: str) -> S3Storage:
    return S3Storage(
        bucket="b",
        endpoint_url=endpoint,
        access_key_id="k",
        secret_access_key="s",
        max_attempts=1,
        connect_timeout_s=1,
    )


CALLS: dict[str, Callable[[S3Storage, Path], object]] = {
    "put_bytes": lambda s, tmp: s.put_bytes("jobs/j/a.bin", b"x"),
    "put_file": lambda s, tmp: s.put_file("jobs/j/a.bin", tmp / "a.bin"),
    "get_bytes": lambda s, tmp: s.get_bytes("jobs/j/a.bin"),
    "get_file": lambda s, tmp: s.get_file("jobs/j/a.bin", tmp / "out" / "a.bin"),
    "exists": lambda s, tmp: s.exists("jobs/j/a.bin"),
    "list": lambda s, tmp: s.list("jobs/j/"),
    "delete_prefix": lambda s, tmp: s.delete_prefix("jobs/j/"),
    "start_multipart": lambda s, tmp: s.start_multipart("jobs/j/a.bin"),
    "complete_multipart": lambda s, tmp: s.complete_multipart("jobs/j/a.bin", "u"),
    "abort_multipart": lambda s, tmp: s.abort_multipart("jobs/j/a.bin", "u"),
}


@pytest.mark.parametrize("fault", ["500 InternalError", "connection refused"])
@pytest.mark.parametrize("call", list(CALLS))
def test_a_failing_store_raises_storage_error_naming_the_key(
    call: str, fault: str, failing_endpoint: str, closed_endpoint: str, tmp_path: Path
) -> None:
    (tmp_path / "a.bin").write_bytes(b"x")
    store = _store(failing_endpoint if fault.startswith("500") else closed_endpoint)
    with pytest.raises(StorageError, match=r"jobs/j/") as raised:
        CALLS[call](store, tmp_path)
    assert "in 1 attempts with backoff" in raised.value.message
