"""datasets, model imports, lineage

Revision ID: 0015
Revises: 0012
Create Date: 2026-11-24 21:42:48.396425
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0015"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("format", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("test_fraction", sa.Float(), nullable=False),
        sa.Column("skip_corrupt", sa.Boolean(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column(
            "summary",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "error",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("job_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("upload_key", sa.String(length=1000), nullable=False),
        sa.Column("multipart_id", sa.String(length=1000), nullable=True),
        sa.Column("declared_size", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_datasets_status"), "datasets", ["status"], unique=False)
    op.create_index(
        "ix_datasets_tenant_created", "datasets", ["tenant_id", "created_at", "id"], unique=False
    )
    op.create_table(
        "model_imports",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("model_name", sa.String(length=100), nullable=False),
        sa.Column("format", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=2000), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column(
            "error",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("job_id", sa.String(length=36), nullable=True),
        sa.Column("model_version_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("upload_key", sa.String(length=1000), nullable=False),
        sa.Column("multipart_id", sa.String(length=1000), nullable=True),
        sa.Column("declared_size", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["model_version_id"], ["model_versions.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_model_imports_status"), "model_imports", ["status"], unique=False)
    op.create_index(
        "ix_model_imports_tenant_created",
        "model_imports",
        ["tenant_id", "created_at", "id"],
        unique=False,
    )
    if op.get_bind().dialect.name == "sqlite":
        # Not a batch rebuild: that drops model_versions, and with foreign keys on SQLite's
        # DROP TABLE deletes its rows first, cascading to aliases, previews and artifacts.
        # SQLite adds a column with a REFERENCES clause in place when its default is NULL.
        op.execute(
            "ALTER TABLE model_versions ADD COLUMN parent_id VARCHAR(36) "
            "CONSTRAINT fk_model_versions_parent_id REFERENCES model_versions (id) "
            "ON DELETE SET NULL"
        )
        op.execute("ALTER TABLE model_versions ADD COLUMN lineage JSON")
    else:
        op.add_column("model_versions", sa.Column("parent_id", sa.String(length=36)))
        op.add_column(
            "model_versions",
            sa.Column(
                "lineage",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=True,
            ),
        )
        op.create_foreign_key(
            "fk_model_versions_parent_id",
            "model_versions",
            "model_versions",
            ["parent_id"],
            ["id"],
            ondelete="SET NULL",
        )
    op.create_index(
        op.f("ix_model_versions_parent_id"), "model_versions", ["parent_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_model_versions_parent_id"), table_name="model_versions")
    if op.get_bind().dialect.name == "sqlite":
        # SQLite drops a column that is in a foreign key only by rebuilding the table (with
        # the cascade on DROP TABLE that the upgrade avoids: aliases and previews go too).
        with op.batch_alter_table("model_versions") as batch:
            batch.drop_column("lineage")
            batch.drop_column("parent_id")
    else:
        op.drop_constraint("fk_model_versions_parent_id", "model_versions", type_="foreignkey")
        op.drop_column("model_versions", "lineage")
        op.drop_column("model_versions", "parent_id")
    op.drop_index("ix_model_imports_tenant_created", table_name="model_imports")
    op.drop_index(op.f("ix_model_imports_status"), table_name="model_imports")
    op.drop_table("model_imports")
    op.drop_index("ix_datasets_tenant_created", table_name="datasets")
    op.drop_index(op.f("ix_datasets_status"), table_name="datasets")
    op.drop_table("datasets")
