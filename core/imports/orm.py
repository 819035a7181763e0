from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, utcnow
from core.uploads import UploadColumns


class ImportStatus(StrEnum):
    """awaiting_upload → importing → registered | invalid (an s3:// import starts at
    importing)."""

    awaiting_upload = "awaiting_upload"
    importing = "importing"
    registered = "registered"
    invalid = "invalid"


class ModelImport(UploadColumns, Base):
    """An existing model on its way into the registry: a diffusers pipeline or one of our
    engines' checkpoints, uploaded as an archive (to ``upload_key``) or read from an
    s3:// ``source``; the import job validates it, records checksums and registers it."""

    __tablename__ = "model_imports"
    __table_args__ = (Index("ix_model_imports_tenant_created", "tenant_id", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    model_name: Mapped[str] = mapped_column(String(100))
    format: Mapped[str] = mapped_column(String(16))
    source: Mapped[str | None] = mapped_column(String(2000), default=None)
    status: Mapped[ImportStatus] = mapped_column(String(16), index=True)
    size: Mapped[int | None] = mapped_column(BigInteger, default=None)
    error: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    job_id: Mapped[str | None] = mapped_column(String(36), default=None)
    model_version_id: Mapped[str | None] = mapped_column(
        ForeignKey("model_versions.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(default=None)
