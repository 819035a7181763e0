"""A real HTTP webhook receiver on loopback, scripted per path: each path answers with the
next status of its script (the last one repeats), or hangs until the test ends."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HANG = -1


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)  # type: ignore[no-any-return]


class Receiver:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.scripts: dict[str, list[int]] = {}
        self._lock = threading.Condition()
        self._release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                status = receiver._record(self.path, dict(self.headers.items()), body)
                if status == HANG:
                    receiver._release.wait(60)
                    return
                self.send_response(status)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str, *script: int) -> str:
        self.scripts[path] = list(script) or [200]
        return f"http://127.0.0.1:{self.port}{path}"

    def script(self, path: str, *script: int) -> None:
        with self._lock:
            self.scripts[path] = list(script)

    def _record(self, path: str, headers: dict[str, str], body: bytes) -> int:
        with self._lock:
            self.requests.append(Received(path, headers, body))
            script = self.scripts.get(path, [404])
            status = script.pop(0) if len(script) > 1 else script[0]
            self._lock.notify_all()
            return status

    def at(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def wait_for(self, path: str, count: int, timeout_s: float = 120) -> list[Received]:
        """The first ``count`` requests to ``path``, waiting for them up to ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while len(got := [r for r in self.requests if r.path == path]) < count:
                left = deadline - time.monotonic()
                assert left > 0, f"{path}: {len(got)} of {count} deliveries arrived"
                self._lock.wait(left)
            return got

    def close(self) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()
