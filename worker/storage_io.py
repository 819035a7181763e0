"""Copying between object storage and a job's work directory."""

from __future__ import annotations

from pathlib import Path

from core.storage import Storage


def download_prefix(storage: Storage, prefix: str, directory: Path) -> None:
    """Every object under ``prefix`` into ``directory``, keeping the layout below it."""
    for obj in storage.list(prefix):
        storage.get_file(obj.key, directory / obj.key[len(prefix) :].lstrip("/"))
