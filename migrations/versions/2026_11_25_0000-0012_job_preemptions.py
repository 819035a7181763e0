"""jobs.preemptions (runs handed back on a worker's warm shutdown); an index on
api_keys.prefix (keys are looked up by prefix, then compared in constant time)

Revision ID: 0012
Revises: 0003
Create Date: 2026-11-25 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "jobs", sa.Column("preemptions", sa.Integer(), nullable=False, server_default="0")
    )
    op.create_index(op.f("ix_api_keys_prefix"), "api_keys", ["prefix"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_api_keys_prefix"), table_name="api_keys")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("preemptions")
