"""Upgrading an embedded stack's SQLite database keeps its rows: 0015 adds lineage columns
to model_versions, which a batch rebuild would do by dropping the table, and SQLite's
DROP TABLE with foreign keys on deletes the rows that reference it first (aliases,
previews, artifacts)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, text

from core.migrate import upgrade


def test_upgrade_to_lineage_keeps_versions_and_their_aliases(tmp_path: Path):
    url = f"sqlite:///{tmp_path}/embedded.db"
    upgrade(url, "0012")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("PRAGMA foreign_keys=ON"))
        conn.execute(
            text("INSERT INTO tenants (id, name, created_at) VALUES ('t', 't', '2026-01-01')")
        )
        conn.execute(
            text(
                "INSERT INTO model_versions (id, tenant_id, name, version, engine, dataset, "
                "config, spec, metrics, checkpoint_uri, created_at) VALUES ('v1', 't', 'm', 1, "
                "'ddpm', 'digits', '{}', '{}', '{}', 'jobs/j/model/', '2026-01-01')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO model_aliases (tenant_id, name, alias, model_version_id) "
                "VALUES ('t', 'm', 'prod', 'v1')"
            )
        )
    engine.dispose()

    upgrade(url)

    engine = create_engine(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT id, parent_id FROM model_versions")).all() == [
            ("v1", None)
        ]
        assert conn.execute(text("SELECT alias FROM model_aliases")).scalars().all() == ["prod"]
    engine.dispose()


def test_upgrade_to_unique_dataset_names_renames_later_duplicates(tmp_path: Path):
    url = f"sqlite:///{tmp_path}/embedded.db"
    upgrade(url, "0016")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO tenants (id, name, created_at) VALUES ('t', 't', '2026-01-01')")
        )
        for i, (dataset_id, name) in enumerate(
            [("ds_" + "a" * 32, "set"), ("ds_" + "b" * 32, "set"), ("ds_" + "c" * 32, "other")]
        ):
            conn.execute(
                text(
                    "INSERT INTO datasets (id, tenant_id, name, format, status, test_fraction, "
                    "skip_corrupt, created_at, upload_key) VALUES (:id, 't', :name, 'zip', "
                    "'ready', 0.2, 0, :at, 'k')"
                ),
                {"id": dataset_id, "name": name, "at": f"2026-01-0{i + 1}"},
            )
    engine.dispose()

    upgrade(url)

    engine = create_engine(url)
    with engine.connect() as conn:
        names = dict(conn.execute(text("SELECT id, name FROM datasets")).all())
    engine.dispose()
    assert names == {
        "ds_" + "a" * 32: "set",
        "ds_" + "b" * 32: "set-bbbbbbbb",
        "ds_" + "c" * 32: "other",
    }
