"""job events carry a type and the job object; webhook secrets, deliveries and attempts

Revision ID: 0003
Revises: 0002_console
Create Date: 2026-11-25 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002_console"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("job_events") as batch:
        batch.add_column(sa.Column("type", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("payload", JSON, nullable=True))
    # Rows written before this revision were state changes only.
    op.execute(
        "UPDATE job_events SET type = CASE status WHEN 'queued' THEN 'queued' "
        "WHEN 'running' THEN 'start' ELSE 'completed' END"
    )
    with op.batch_alter_table("job_events") as batch:
        batch.alter_column("type", existing_type=sa.String(length=16), nullable=False)

    op.create_table(
        "webhook_secrets",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("previous_key", sa.String(length=100), nullable=True),
        sa.Column("rotated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("tenant_id"),
    )

    # Nothing wrote webhook deliveries before this revision (the table was a placeholder),
    # so it is reshaped without carrying rows over.
    op.execute("DELETE FROM webhook_deliveries")
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.drop_column("payload")
        batch.add_column(sa.Column("event_id", sa.Integer(), nullable=False))
        batch.add_column(sa.Column("give_up_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("leased_until", sa.DateTime(timezone=True), nullable=True))
        batch.create_foreign_key(
            "fk_webhook_deliveries_event_id", "job_events", ["event_id"], ["id"], ondelete="CASCADE"
        )
        batch.create_index("ix_webhook_deliveries_job_event", ["job_id", "event_id"])

    op.create_table(
        "webhook_attempts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("delivery_id", sa.String(length=36), nullable=False),
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["delivery_id"], ["webhook_deliveries.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_webhook_attempts_delivery_id"), "webhook_attempts", ["delivery_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_webhook_attempts_delivery_id"), table_name="webhook_attempts")
    op.drop_table("webhook_attempts")
    # The old table kept the body per delivery; the log of this revision cannot be
    # carried back into that shape, so it is dropped with the downgrade.
    op.execute("DELETE FROM webhook_deliveries")
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.drop_index("ix_webhook_deliveries_job_event")
        batch.drop_constraint("fk_webhook_deliveries_event_id", type_="foreignkey")
        batch.drop_column("leased_until")
        batch.drop_column("give_up_at")
        batch.drop_column("event_id")
        batch.add_column(sa.Column("payload", JSON, nullable=False))
    op.drop_table("webhook_secrets")
    # Events other than state changes did not exist before this revision.
    op.execute("DELETE FROM job_events WHERE type IN ('progress', 'output')")
    with op.batch_alter_table("job_events") as batch:
        batch.drop_column("payload")
        batch.drop_column("type")
