"""The reference classifiers of the datasets (the "<dataset> classifier" feature space),
trained once and shared by every worker through storage: evaluate jobs and scored train
jobs read them from ``cache/metrics/`` and add the ones they had to train."""

from __future__ import annotations

from pathlib import Path

from core.storage import Storage

CACHE_PREFIX = "cache/metrics"


def sync_down(storage: Storage, directory: Path) -> None:
    """The reference classifiers trained by earlier jobs, shared by all workers."""
    for obj in storage.list(f"{CACHE_PREFIX}/"):
        target = directory / obj.key[len(CACHE_PREFIX) + 1 :]
        if not target.exists():
            storage.get_file(obj.key, target)


def sync_up(storage: Storage, directory: Path) -> None:
    """The classifiers this job trained, for the next ones."""
    if not directory.exists():
        return
    for path in directory.rglob("*"):
        key = f"{CACHE_PREFIX}/{path.relative_to(directory).as_posix()}"
        if path.is_file() and not storage.exists(key):
            storage.put_file(key, path)
