"""A private Docker engine for the compose-stack test, started here and nowhere else.

Debian's ``docker.io`` daemon with its own socket, exec root and data root (overlay2,
``--iptables=false --bridge=none``: nothing system-wide is touched). The data root sits at
a fixed path outside the checkout so that images and build layers survive between runs
(the warm case); a machine without it builds everything (the cold case) and passes too.
The daemon is stopped when the test session ends; its data root is kept.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

# Debian's client: the one on PATH may be another (a newer CLI defaults to BuildKit,
# which fetches a frontend image from Docker Hub).
DOCKER = "/usr/bin/docker"
DOCKERD = "/usr/sbin/dockerd"
DATA_ROOT = Path(os.environ.get("SYNTHGEN_TEST_DOCKER_ROOT", "/var/cache/synthgen-test-docker"))
RUN_DIR = Path("/run/synthgen-test-docker")  # short: containerd's socket paths have a limit
SOCKET = RUN_DIR / "docker.sock"
HOST = f"unix://{SOCKET}"
APT_PACKAGES = {DOCKERD: "docker.io", "/usr/sbin/debootstrap": "debootstrap"}


def install_tools() -> None:
    """Debian's docker.io and debootstrap, installed when missing (a fresh machine)."""
    missing = [pkg for path, pkg in APT_PACKAGES.items() if not Path(path).exists()]
    if not missing:
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env)


def docker(
    *args: str, check: bool = True, timeout: float = 600, **kw
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [DOCKER, "-H", HOST, *args],
        check=check,
        capture_output=True,
        text=True,
        timeout=timeout,
        **kw,
    )


def _answers() -> bool:
    return SOCKET.exists() and docker("version", check=False, timeout=20).returncode == 0


class Engine:
    """The daemon's life for one test session: started when not already answering."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = DATA_ROOT.parent / "synthgen-test-dockerd.log"

    def start(self) -> None:
        install_tools()
        if _answers():  # left by a run that was killed: reuse it, stop it at the end
            self._adopt()
            return
        DATA_ROOT.mkdir(parents=True, exist_ok=True)
        RUN_DIR.mkdir(parents=True, exist_ok=True)
        SOCKET.unlink(missing_ok=True)
        args = [
            DOCKERD, "--host", HOST, "--data-root", str(DATA_ROOT / "root"),
            "--exec-root", str(RUN_DIR / "exec"), "--pidfile", str(RUN_DIR / "dockerd.pid"),
            "--storage-driver", "overlay2", "--iptables=false", "--ip6tables=false",
            "--bridge=none",
        ]  # fmt: skip
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(args, stdout=out, stderr=out, start_new_session=True)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dockerd exited {self.proc.returncode}: {self._tail()}")
            if _answers():
                return
            time.sleep(0.5)
        raise RuntimeError(f"dockerd did not answer in 90 s: {self._tail()}")

    def _adopt(self) -> None:
        pid_file = RUN_DIR / "dockerd.pid"
        self.pid = int(pid_file.read_text()) if pid_file.exists() else None

    def _tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    def stop(self) -> None:
        pid = self.proc.pid if self.proc else getattr(self, "pid", None)
        if pid is None:
            return
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            if self.proc and self.proc.poll() is not None:
                break
            time.sleep(0.5)
        shutil.rmtree(RUN_DIR / "exec", ignore_errors=True)
