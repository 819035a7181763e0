from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, new_id, utcnow


class ModelVersion(Base):
    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("tenant_id", "name", "version"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100), index=True)
    version: Mapped[int]
    engine: Mapped[str] = mapped_column(String(32))
    dataset: Mapped[str] = mapped_column(String(200))
    config: Mapped[dict[str, Any]]
    # num_classes, class_names, image_shape: what generate/evaluate validate against.
    spec: Mapped[dict[str, Any]]
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    checkpoint_uri: Mapped[str] = mapped_column(String(1000))
    # Not a foreign key: jobs already reference versions, and lineage must survive a
    # purge of old job rows.
    train_job_id: Mapped[str | None] = mapped_column(String(36), default=None, index=True)
    # The version a fine-tuning started from (train config init_from).
    parent_id: Mapped[str | None] = mapped_column(
        ForeignKey("model_versions.id", ondelete="SET NULL"), default=None, index=True
    )
    # Where the version came from, written once when it is registered: the dataset with
    # its content hash, the code version, the parent, or the import's source and checksums
    # (core/model_versions/lineage.py). None on versions registered before lineage existed.
    lineage: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ModelAlias(Base):
    """``name@alias`` → a version (e.g. ``digits-ddpm@production``)."""

    __tablename__ = "model_aliases"
    __table_args__ = (UniqueConstraint("tenant_id", "name", "alias"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    alias: Mapped[str] = mapped_column(String(100))
    model_version_id: Mapped[str] = mapped_column(
        ForeignKey("model_versions.id", ondelete="CASCADE")
    )
    updated_at: Mapped[datetime | None] = mapped_column(default=None)
    # Who moved it last: the first characters of the API key (what `keys revoke` takes).
    updated_by: Mapped[str | None] = mapped_column(String(64), default=None)


class ModelAliasMove(Base):
    """Every set, move and removal of an alias, kept after the alias itself is gone."""

    __tablename__ = "model_alias_moves"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100), index=True)
    alias: Mapped[str] = mapped_column(String(100))
    # Versions as numbers, not ids: the record must outlive a deleted version.
    from_version: Mapped[int | None] = mapped_column(default=None)
    to_version: Mapped[int | None] = mapped_column(default=None)
    moved_by: Mapped[str] = mapped_column(String(64))
    moved_at: Mapped[datetime] = mapped_column(default=utcnow)
