"""What a handler hands back: its job's result, the files to keep and what to register,
as data. The runner (worker/runner.py) stores the files, records them as artifacts,
registers and marks the job succeeded, in one place and one transaction; a handler never
ends its job itself.

A handler writes to storage while it runs only what cannot wait for its end: checkpoints,
sampled shards, the shards of a sharded output (the disk holds one at a time), weights
announced by an ``output`` event. Those come back here as :class:`File` s of the
:class:`~core.storage.StoredObject` already written; everything else comes as bytes or a
local path, which the runner uploads under the job's prefix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.storage import StoredObject


@dataclass(frozen=True)
class File:
    """An artifact: ``name`` relative to the job's prefix (``grid.png``, ``model/x``) and
    its content: bytes or a local file to upload, or the object the job stored already."""

    name: str
    data: bytes | Path | StoredObject
    content_type: str | None = None

    @property
    def size(self) -> int:
        if isinstance(self.data, StoredObject):
            return self.data.size
        if isinstance(self.data, Path):
            return self.data.stat().st_size
        return len(self.data)


def stored(objects: list[tuple[str, StoredObject]]) -> list[File]:
    """``(name, object)`` pairs already in storage (an output writer's) as files."""
    return [File(name, obj) for name, obj in objects]


@dataclass(frozen=True)
class NewVersion:
    """The next version of model ``name``, its files the job's ``model/`` folder. A
    version trained by the job records the job as its training job; an imported one
    (``import_id``) records none, and its import is marked registered with it. The job's
    result gains the version's summary (``model_version``)."""

    name: str
    engine: str
    dataset: str
    config: dict[str, Any]
    spec: dict[str, Any]
    metrics: dict[str, Any]
    lineage: dict[str, Any]
    parent_id: str | None = None
    import_id: str | None = None


@dataclass(frozen=True)
class Evaluation:
    """Figures attached to an existing model version (``metrics`` merged into its own)."""

    version_id: str
    metrics: dict[str, Any]


@dataclass(frozen=True)
class DatasetReady:
    """An uploaded dataset validated: ``ready``, with its content hash and summary."""

    dataset_id: str
    sha256: str
    summary: dict[str, Any]


Registration = NewVersion | Evaluation | DatasetReady


@dataclass(frozen=True)
class Outcome:
    """A job's success: ``result`` (the job's ``result``), ``files`` (its artifacts) and
    what the registry learns from it, committed with the success or not at all."""

    result: dict[str, Any]
    files: list[File] = field(default_factory=list)
    register: Registration | None = None
