"""The embedded stack as a user starts it: `synthgen up` in a child process (SQLite, the
local store, a SQLite-backed broker, a worker child), and a key made with the real CLI."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
# The installed console script: CLI tests run exactly what a user types.
SYNTHGEN = str(Path(sys.executable).with_name("synthgen"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNTHGEN_")}
    env["OMP_NUM_THREADS"] = "1"
    return env


@dataclass
class Stack:
    url: str
    key: str
    home: Path
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def cwd(self) -> Path:
        """The directory `up` ran in: its `.synthgen` is ``home``."""
        return self.home.parent

    @property
    def output(self) -> str:
        """What `up` printed so far (stdout and stderr), as a terminal would show it."""
        return output_of(self.home)


def output_of(home: Path) -> str:
    return (home.parent / "up.log").read_text(errors="replace")


def start_stack(base: Path, env: dict[str, str] | None = None) -> Stack:
    port = free_port()
    home = base / ".synthgen"
    base.mkdir(parents=True, exist_ok=True)
    with (base / "up.log").open("wb") as log:  # the child keeps its own descriptor
        proc = subprocess.Popen(
            [SYNTHGEN, "up", "--port", str(port)],
            cwd=base,
            env={**clean_env(), **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(f"{url}/readyz").status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, "stack did not start"
        time.sleep(0.5)
    done = subprocess.run(
        [SYNTHGEN, "keys", "create", "--tenant", "e2e"],
        cwd=base, env=clean_env(), capture_output=True, text=True, check=True,
    )  # fmt: skip
    return Stack(url, done.stdout.strip().splitlines()[-1], home, port, proc)


def stop_stack(stack: Stack) -> None:
    stack.proc.terminate()
    stack.proc.wait(timeout=30)


@pytest.fixture()
def stack(tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    running = start_stack(tmp_path)
    yield running.url, running.key, running.home
    stop_stack(running)


@pytest.fixture(scope="module")
def shared_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = start_stack(tmp_path_factory.mktemp("stack"))
    yield running
    stop_stack(running)
