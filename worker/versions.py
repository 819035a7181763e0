"""A job's model version: its row, and its files loaded into the engine that wrote them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.db import session_scope
from core.errors import ModelNotFound
from core.model_versions.orm import ModelVersion
from worker.storage_io import download_prefix

if TYPE_CHECKING:
    from models.engines.base import Engine, Trained
    from worker.context import JobContext


def get_version(ctx: JobContext, version_id: str | None) -> ModelVersion:
    with session_scope(ctx.settings.database_url) as session:
        version = session.get(ModelVersion, version_id) if version_id else None
        if version is None:
            raise ModelNotFound("the model version this job was submitted for no longer exists")
        session.expunge(version)
    return version


def load_version(ctx: JobContext, version_id: str | None) -> tuple[ModelVersion, Engine, Trained]:
    """The version's row, its engine and its trained model (downloaded into the workdir)."""
    from models import engines  # torch: only the handlers that sample need it

    version = get_version(ctx, version_id)
    directory = ctx.workdir / "model"
    download_prefix(ctx.storage, version.checkpoint_uri, directory)
    engine = engines.get(version.engine)
    return version, engine, engine.load(directory)
