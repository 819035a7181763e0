"""mlcroissant extracts an archive (a zip, a tar shard) once into
``~/.cache/croissant/extract/<sha256 of its contentUrl>`` and reuses that folder for any
later record naming the same relative contentUrl, so two generated sets read one after the
other would share the first one's extraction. Tests give each test its own folder."""

from __future__ import annotations

from pathlib import Path

import pytest


def isolate(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    from etils import epath
    from mlcroissant._src.operation_graph.operations import extract

    monkeypatch.setattr(extract, "EXTRACT_PATH", epath.Path(folder))
