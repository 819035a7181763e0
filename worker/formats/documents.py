"""The two documents every job that makes a dataset writes beside its images, whatever
the format: ``README.md`` (worker/formats/card.py) and ``croissant.json``
(worker/formats/croissant.py), both from one :class:`Description`."""

from __future__ import annotations

import json

from core.storage import Storage, StoredObject
from worker.formats import card, croissant
from worker.formats.description import Description

CARD = "README.md"
CROISSANT = "croissant.json"


def write(storage: Storage, prefix: str, d: Description) -> list[tuple[str, StoredObject]]:
    body = json.dumps(croissant.record(d), indent=1, ensure_ascii=False).encode()
    return [
        (CARD, storage.put_bytes(f"{prefix}/{CARD}", card.render(d).encode(), "text/markdown")),
        (CROISSANT, storage.put_bytes(f"{prefix}/{CROISSANT}", body, "application/ld+json")),
    ]
