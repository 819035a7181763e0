"""Local images standing in for the public base images docker-compose.yml and the two
Dockerfiles name, which cannot be pulled here (no Docker Hub). Each is real software from
Debian's packages or PyPI, tagged with the exact public name, defined in standins/ (the
test's own folder, never the product's files).

Two root filesystems come from ``debootstrap`` (bookworm, minbase): a lean one with Python
for the images our Dockerfiles build on, and one with the servers (PostgreSQL, Redis,
Prometheus, wget) for the rest. An image is rebuilt only when standins/ changed (a label
carries its hash), so a warm engine skips all of this.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.deploy.engine import DATA_ROOT, docker
from tests.servers import VENV_BIN

HERE = Path(__file__).parent / "standins"
MIRROR = "http://deb.debian.org/debian"
ROOTFS = {
    "python-rootfs": ["ca-certificates", "python3", "python3-venv", "python-is-python3", "passwd"],
    "services-rootfs": ["ca-certificates", "postgresql-15", "redis-server", "prometheus", "wget"],
}
# public name -> (Dockerfile in standins/, the root filesystem it stands on)
STANDINS = {
    "python:3.12-slim-bookworm": ("python.Dockerfile", "python-rootfs"),
    "postgres:16-bookworm": ("postgres.Dockerfile", "services-rootfs"),
    "redis:7-bookworm": ("redis.Dockerfile", "services-rootfs"),
    "chrislusf/seaweedfs:4.48": ("seaweedfs.Dockerfile", "services-rootfs"),
    "prom/prometheus:v2.53.4": ("prometheus.Dockerfile", "services-rootfs"),
}
LABEL = "org.synthgen.test.standin"


def _digest(packages: list[str], dockerfile: str | None = None) -> str:
    """What an image is made of: its root filesystem's packages and, for a stand-in, its
    Dockerfile and the files that copies. Each image has its own, so a change to one
    stand-in leaves the others (and the layers built on them) as they were."""
    h = hashlib.sha256(" ".join(packages).encode())
    if dockerfile is not None:
        text = (HERE / dockerfile).read_text()
        h.update(text.encode())
        for name in re.findall(r"^COPY (\S+) ", text, re.MULTILINE):
            if (HERE / name).exists():
                h.update((HERE / name).read_bytes())
    return h.hexdigest()[:16]


def _label(image: str) -> str | None:
    template = f'{{{{index .Config.Labels "{LABEL}"}}}}'
    done = docker("image", "inspect", "-f", template, image, check=False)
    return done.stdout.strip() if done.returncode == 0 else None


def _rootfs(name: str, digest: str) -> None:
    image = f"synthgen-standin/{name}:bookworm"
    if _label(image) == digest:
        return
    target = DATA_ROOT / "rootfs" / name
    _remove(target)
    target.mkdir(parents=True)
    subprocess.run(
        ["debootstrap", "--variant=minbase", f"--include={','.join(ROOTFS[name])}",
         "bookworm", str(target), MIRROR],
        check=True, capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for entry in (target / cache).glob("*.deb"):
            entry.unlink()
    tar = subprocess.Popen(["tar", "-C", str(target), "-c", "."], stdout=subprocess.PIPE)
    docker("import", "--change", f"LABEL {LABEL}={digest}", "-", image, stdin=tar.stdout)
    tar.wait()
    _remove(target)


def _remove(target: Path) -> None:
    """A root filesystem, after unmounting what a debootstrap that died may have left
    mounted in it (its /proc and /sys): never delete through a live mount."""
    for mount in ("proc", "sys", "dev/pts", "dev"):
        subprocess.run(["umount", "-l", str(target / mount)], capture_output=True, check=False)
    shutil.rmtree(target, ignore_errors=True)


def _standin(public: str, dockerfile: str, rootfs: str, digest: str) -> None:
    if _label(public) == digest:
        return
    with tempfile.TemporaryDirectory(prefix="standin-") as ctx:
        shutil.copytree(HERE, ctx, dirs_exist_ok=True)
        if dockerfile == "python.Dockerfile":
            shutil.copy("/etc/ssl/certs/ca-certificates.crt", Path(ctx) / "ca-certificates.crt")
        if dockerfile == "seaweedfs.Dockerfile":
            shutil.copy(VENV_BIN / "weed", Path(ctx) / "weed")
        docker(
            "build", "--network", "host", "--label", f"{LABEL}={digest}",
            "-f", str(Path(ctx) / dockerfile), "-t", public, ctx,
            env={"DOCKER_BUILDKIT": "0", "PATH": "/usr/bin:/bin"},
        )  # fmt: skip


def ensure() -> dict[str, str]:
    """Every stand-in present and current; returns which were built ("built"/"kept")."""
    digests = {
        public: _digest(ROOTFS[rootfs], dockerfile)
        for public, (dockerfile, rootfs) in STANDINS.items()
    }
    stale = {public for public, digest in digests.items() if _label(public) != digest}
    with ThreadPoolExecutor(max_workers=2) as pool:  # debootstrap mostly waits on the mirror
        list(pool.map(lambda name: _rootfs(name, _digest(ROOTFS[name])), ROOTFS))
    for public in stale:
        dockerfile, rootfs = STANDINS[public]
        _standin(public, dockerfile, rootfs, digests[public])
    return {public: "built" if public in stale else "kept" for public in STANDINS}
