"""Previews (the playground's grids, drawn live from a model), run by a worker that
consumes only the ``preview`` queue (``-Q preview``): claim the row, sample the planned
grid from a model kept loaded in this process, put the PNG in storage, mark the row done.
The API is waiting on that row (api/routes/preview.py).

Loaded models are cached per process, least recently used first out, keyed by model
version id: a version never changes, so a cached model is never stale.
"""

from __future__ import annotations

import logging
import math
import shutil
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path
from typing import cast

import numpy as np
import torch

from core.config import Settings
from core.db import session_scope
from core.model_versions.orm import ModelVersion
from core.previews import service as previews
from core.previews.orm import Preview
from core.previews.schemas import AUTO_SHORT_SIDE, MAX_PREVIEW_SCALE
from core.previews.service import Plan
from core.storage import Storage
from core.storage import from_settings as storage_from_settings
from models import engines
from models.engines.base import Engine, Trained
from worker import failures
from worker.images import grid_png, grid_shape
from worker.storage_io import download_prefix

log = logging.getLogger("synthgen.worker")


class ModelCache:
    """version id → (engine, trained model), at most ``size`` of them."""

    def __init__(self, size: int) -> None:
        self.size = max(1, size)
        self._models: OrderedDict[str, tuple[Engine, Trained]] = OrderedDict()
        self._lock = threading.Lock()

    def get(
        self, version: ModelVersion, storage: Storage, work_dir: Path
    ) -> tuple[Engine, Trained, bool]:
        """The loaded model and whether it was cached already."""
        with self._lock:
            if version.id in self._models:
                self._models.move_to_end(version.id)
                return (*self._models[version.id], True)
            work_dir.mkdir(parents=True, exist_ok=True)
            directory = Path(tempfile.mkdtemp(prefix="preview-model-", dir=work_dir))
            try:
                download_prefix(storage, version.checkpoint_uri, directory)
                engine = engines.get(version.engine)
                trained = engine.load(directory)
            finally:
                shutil.rmtree(directory, ignore_errors=True)
            self._models[version.id] = (engine, trained)
            while len(self._models) > self.size:
                self._models.popitem(last=False)
            return engine, trained, False


_cache: ModelCache | None = None


def cache(settings: Settings) -> ModelCache:
    global _cache  # noqa: PLW0603 - one cache per worker process, shared by its tasks
    if _cache is None:
        _cache = ModelCache(settings.preview_cache_models)
    return _cache


def draw(engine: Engine, trained: Trained, plan: Plan) -> bytes:
    """The grid PNG: row i holds ``counts[i]`` images of class ``rows[i]`` (or, for an
    unconditional model, the next images in turn); empty cells stay black."""
    counts, rows, columns = plan["counts"], plan["rows"], plan["columns"]
    labels = None
    if rows is not None:
        labels = torch.tensor([c for c, n in zip(rows, counts, strict=True) for _ in range(n)])
    images = engine.sample(trained, sum(counts), labels, seed=plan["seed"], **plan["options"])
    c, h, w = images.shape[1:]
    cells = np.zeros((len(counts) * columns, c, h, w), dtype=np.uint8)
    start = 0
    for row, n in enumerate(counts):
        cells[row * columns : row * columns + n] = images[start : start + n].numpy()
        start += n
    return grid_png(cells, nrow=columns, scale=grid_scale(plan, cells.shape[0], h, w))


def grid_scale(plan: Plan, cells: int, h: int, w: int) -> int:
    """The plan's scale; "auto": the smallest bringing the grid's short side to
    AUTO_SHORT_SIDE px (the samples themselves may be 8 px: a grid a person can see)."""
    scale = plan.get("scale", 1)  # rows planned before scale existed are drawn unscaled
    if scale != "auto":
        return int(scale)
    short = min(grid_shape(cells, plan["columns"], h, w))
    return min(MAX_PREVIEW_SCALE, max(1, math.ceil(AUTO_SHORT_SIDE / short)))


def run_preview(preview_id: str, *, settings: Settings, storage: Storage | None = None) -> str:
    with session_scope(settings.database_url) as session:
        if not previews.move(
            session=session, preview_id=preview_id, source="queued", target="running"
        ):
            return "skipped"  # a redelivered message, or purged meanwhile
        row = session.get(Preview, preview_id)
        version = session.get(ModelVersion, row.model_version_id) if row else None
        if row is None or version is None:
            return "skipped"
        session.expunge_all()
    storage = storage or storage_from_settings(settings)
    try:
        engine, trained, hit = cache(settings).get(version, storage, settings.work_dir)
        png = draw(engine, trained, cast(Plan, row.request))
        key = f"previews/{row.tenant_id}/{preview_id}.png"
        storage.put_bytes(key, png, "image/png")
    except Exception as exc:  # noqa: BLE001 - the waiting request must hear why
        failure = failures.classify(exc) or failures.Failure("Stopped", "the preview was stopped")
        if not failure.bug:  # a bug's traceback is logged by classify, under its error id
            log.warning("preview %s failed: %s", preview_id, failure.message)
        _end(settings, preview_id, "failed", error=failure.as_error())
        return "failed"
    _end(settings, preview_id, "succeeded", image_key=key, cache_hit=hit)
    return "succeeded"


def _end(settings: Settings, preview_id: str, target: str, **fields: object) -> None:
    with session_scope(settings.database_url) as session:
        previews.move(
            session=session, preview_id=preview_id, source="running", target=target, **fields
        )
