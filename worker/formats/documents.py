"""The two documents every job that makes a dataset writes beside its images, whatever
the format: ``README.md`` (worker/formats/card.py) and ``croissant.json``
(worker/formats/croissant.py), both from one :class:`Description`."""

from __future__ import annotations

import json
from typing import cast

from core.storage import Storage, StoredObject
from worker.formats import card, croissant
from worker.formats.description import Description
from worker.outcome import File

CARD = "README.md"
CROISSANT = "croissant.json"


def files(d: Description) -> list[File]:
    """The two documents, for a job's outcome."""
    body = json.dumps(croissant.record(d), indent=1, ensure_ascii=False).encode()
    return [
        File(CARD, card.render(d).encode(), "text/markdown"),
        File(CROISSANT, body, "application/ld+json"),
    ]


def write(storage: Storage, prefix: str, d: Description) -> list[tuple[str, StoredObject]]:
    """The two documents stored under ``prefix`` now."""
    return [
        (f.name, storage.put_bytes(f"{prefix}/{f.name}", cast(bytes, f.data), f.content_type))
        for f in files(d)
    ]
