from __future__ import annotations

from typing import Any

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base


class TrainingPoint(Base):
    """One training step's scalars (losses, lr, grad norm, step time), as MLflow keeps
    metric history: a row per step, so ``every=N`` and ``after=STEP`` are index ranges."""

    __tablename__ = "job_metrics"  # the table's first name, kept: renaming it is a migration

    job_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    step: Mapped[int] = mapped_column(primary_key=True)
    values: Mapped[dict[str, Any]]
