from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, Float, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, utcnow
from core.uploads import UploadColumns


class DatasetStatus(StrEnum):
    """awaiting_upload → validating → ready | invalid; nothing else moves."""

    awaiting_upload = "awaiting_upload"
    validating = "validating"
    ready = "ready"
    invalid = "invalid"


class Dataset(UploadColumns, Base):
    """A tenant's uploaded dataset. Once ``ready`` its content never changes: the
    validation job stored it as ``datasets/{id}/data.npz`` with its train/test split, and
    ``sha256`` (of the upload) names that content in every model's lineage."""

    __tablename__ = "datasets"
    __table_args__ = (
        Index("ix_datasets_tenant_created", "tenant_id", "created_at", "id"),
        # Jobs may name a dataset by its name: one per tenant (migration 0017).
        Index("uq_datasets_tenant_name", "tenant_id", "name", unique=True),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    format: Mapped[str] = mapped_column(String(16))
    status: Mapped[DatasetStatus] = mapped_column(String(16), index=True)
    test_fraction: Mapped[float] = mapped_column(Float)
    skip_corrupt: Mapped[bool]
    size: Mapped[int | None] = mapped_column(BigInteger, default=None)
    sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    # What validation found: classes, counts, image shape and sizes, the split, the
    # corrupt files (see worker/datasets/validate.py).
    summary: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    error: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    job_id: Mapped[str | None] = mapped_column(String(36), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(default=None)
