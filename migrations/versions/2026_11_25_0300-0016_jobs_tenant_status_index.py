"""An index on jobs (tenant_id, status, created_at, id): a tenant's jobs of one status
newest first (GET /v1/jobs?status=), and its queued jobs counted up to the cap in the
submit statement, read in index order instead of filtering all of the tenant's rows

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-25 03:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_jobs_tenant_status_created", "jobs", ["tenant_id", "status", "created_at", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_tenant_status_created", table_name="jobs")
