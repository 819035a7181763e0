"""The model registry: versions per (tenant, name), aliases, resolution of references."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.errors import InvalidRequest, ModelNotFound
from core.model_versions.orm import ModelAlias, ModelVersion
from core.tenants.orm import Tenant


def register(
    *,
    session: Session,
    tenant_id: str,
    name: str,
    engine: str,
    dataset: str,
    config: dict[str, Any],
    spec: dict[str, Any],
    metrics: dict[str, Any],
    checkpoint_uri: str,
    train_job_id: str | None,
    parent_id: str | None = None,
    lineage: dict[str, Any] | None = None,
) -> ModelVersion:
    """Add the next version of ``name``; retried if two trainings finish at once."""
    for _ in range(5):
        latest = session.scalar(
            select(func.max(ModelVersion.version)).where(
                ModelVersion.tenant_id == tenant_id, ModelVersion.name == name
            )
        )
        row = ModelVersion(
            tenant_id=tenant_id,
            name=name,
            version=(latest or 0) + 1,
            engine=engine,
            dataset=dataset,
            config=config,
            spec=spec,
            metrics=metrics,
            checkpoint_uri=checkpoint_uri,
            train_job_id=train_job_id,
            parent_id=parent_id,
            lineage=lineage,
        )
        try:
            with session.begin_nested():
                session.add(row)
                session.flush()
        except IntegrityError:
            continue
        return row
    raise InvalidRequest(f"could not allocate a version for model {name!r}; retry the job")


def resolve(*, session: Session, tenant: Tenant, ref: str, field: str = "model") -> ModelVersion:
    """``name`` (latest), ``name:VERSION``, ``name@ALIAS`` or a model-version id."""
    base = select(ModelVersion).where(ModelVersion.tenant_id == tenant.id)
    row: ModelVersion | None
    if "@" in ref:
        name, alias = ref.split("@", 1)
        row = session.scalar(
            base.join(ModelAlias, ModelAlias.model_version_id == ModelVersion.id).where(
                ModelAlias.tenant_id == tenant.id,
                ModelAlias.name == name,
                ModelAlias.alias == alias,
            )
        )
    elif ":" in ref:
        name, version = ref.rsplit(":", 1)
        if not version.isdigit():
            raise InvalidRequest(f"{field}: version in {ref!r} must be a number", field=field)
        row = session.scalar(
            base.where(ModelVersion.name == name, ModelVersion.version == int(version))
        )
    else:
        row = session.scalar(
            base.where(ModelVersion.name == ref).order_by(ModelVersion.version.desc()).limit(1)
        )
        if row is None:
            row = session.scalar(base.where(ModelVersion.id == ref))
    if row is None:
        raise ModelNotFound(f"{field}: no model {ref!r} is registered for this tenant", field=field)
    return row


def set_alias(*, session: Session, version: ModelVersion, alias: str) -> None:
    existing = session.scalar(
        select(ModelAlias).where(
            ModelAlias.tenant_id == version.tenant_id,
            ModelAlias.name == version.name,
            ModelAlias.alias == alias,
        )
    )
    if existing is None:
        session.add(
            ModelAlias(
                tenant_id=version.tenant_id,
                name=version.name,
                alias=alias,
                model_version_id=version.id,
            )
        )
    else:
        existing.model_version_id = version.id
    session.flush()


def aliases_of(*, session: Session, version_id: str) -> list[str]:
    return list(
        session.scalars(select(ModelAlias.alias).where(ModelAlias.model_version_id == version_id))
    )


def list_models(*, session: Session, tenant: Tenant) -> list[tuple[ModelVersion, int]]:
    """Each model name with its latest version and its number of versions."""
    counts = (
        select(
            ModelVersion.name,
            func.max(ModelVersion.version).label("latest"),
            func.count().label("n"),
        )
        .where(ModelVersion.tenant_id == tenant.id)
        .group_by(ModelVersion.name)
        .subquery()
    )
    rows = session.execute(
        select(ModelVersion, counts.c.n)
        .join(
            counts,
            (ModelVersion.name == counts.c.name) & (ModelVersion.version == counts.c.latest),
        )
        .where(ModelVersion.tenant_id == tenant.id)
        .order_by(ModelVersion.name)
    ).all()
    return [(row[0], int(row[1])) for row in rows]


def list_versions(*, session: Session, tenant: Tenant, name: str) -> list[ModelVersion]:
    rows = list(
        session.scalars(
            select(ModelVersion)
            .where(ModelVersion.tenant_id == tenant.id, ModelVersion.name == name)
            .order_by(ModelVersion.version.desc())
        )
    )
    if not rows:
        raise ModelNotFound(f"no model {name!r} is registered for this tenant")
    return rows


def attach_metrics(*, session: Session, version_id: str, metrics: dict[str, Any]) -> None:
    row = session.get(ModelVersion, version_id, with_for_update=True)
    if row is None:
        raise ModelNotFound(f"model version {version_id} no longer exists")
    row.metrics = {**(row.metrics or {}), **metrics}
    session.flush()
