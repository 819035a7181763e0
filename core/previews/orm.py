from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, new_id, utcnow


class Preview(Base):
    """One synchronous preview request: the API inserts it and waits on its status, the
    preview worker samples the grid, puts the PNG in storage and marks it done."""

    __tablename__ = "previews"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    model_version_id: Mapped[str] = mapped_column(
        ForeignKey("model_versions.id", ondelete="CASCADE")
    )
    # What the worker runs: classes (one grid row each), images per row, seed, options.
    request: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16), default="queued")
    error: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    image_key: Mapped[str | None] = mapped_column(String(1000), default=None)
    # Whether the worker had the model in memory: what makes a preview fast or slow.
    cache_hit: Mapped[bool | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    completed_at: Mapped[datetime | None] = mapped_column(default=None)
