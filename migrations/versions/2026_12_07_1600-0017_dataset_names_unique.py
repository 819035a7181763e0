"""Datasets' names unique per tenant: jobs may name a dataset by its name. Earlier
duplicates keep the oldest dataset's name; each later one gets its id's first 8 hex
digits appended ("set" → "set-9ba309f1"), so every dataset stays reachable by a name.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.text("SELECT id, tenant_id, name FROM datasets ORDER BY created_at, id")
    ).all()
    seen: set[tuple[str, str]] = set()
    for dataset_id, tenant_id, name in rows:
        if (tenant_id, name) in seen:
            renamed = f"{name[:190]}-{dataset_id.removeprefix('ds_')[:8]}"
            bind.execute(
                sa.text("UPDATE datasets SET name = :name WHERE id = :id"),
                {"name": renamed, "id": dataset_id},
            )
            name = renamed
        seen.add((tenant_id, name))
    op.create_index("uq_datasets_tenant_name", "datasets", ["tenant_id", "name"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_datasets_tenant_name", table_name="datasets")
