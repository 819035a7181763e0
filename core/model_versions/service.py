"""The model registry: versions per (tenant, name), aliases, resolution of references."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.db import utcnow
from core.errors import InvalidRequest, ModelNotFound
from core.model_versions.orm import ModelAlias, ModelAliasMove, ModelVersion
from core.tenants.orm import Tenant

IMPORTED_DATASET = "imported"
"""The ``dataset`` of an imported model version: the registry does not know what it was
trained on."""


def training_set(version: ModelVersion | None) -> str | None:
    """The dataset ("name:split") a version was trained on, when the registry knows it:
    every version trained here; None for an imported one (or no version at all)."""
    if version is None or version.dataset == IMPORTED_DATASET or version.train_job_id is None:
        return None
    return version.dataset


def summary(version: ModelVersion) -> dict[str, Any]:
    """How a job's result, lineage or an import names a version: id, name and number."""
    return {"id": version.id, "name": version.name, "version": version.version}


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


MAX_VERSION = 2**31 - 1  # versions are 32-bit integers in the database


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
        # A number past the column's range names no version (and must not reach the query).
        row = (
            session.scalar(
                base.where(ModelVersion.name == name, ModelVersion.version == int(version))
            )
            if int(version) <= MAX_VERSION
            else None
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


def set_alias(
    *, session: Session, tenant: Tenant, name: str, alias: str, version: int, actor: str
) -> tuple[ModelAlias, int]:
    """Point ``name@alias`` at ``name:version`` (create or move); the move is recorded
    with ``actor`` and the time. Returns the alias and its version number."""
    target = resolve(session=session, tenant=tenant, ref=f"{name}:{version}", field="version")
    for _ in range(3):
        row = _alias_row(session, tenant, name, alias)
        previous = _version_number(session, row.model_version_id) if row else None
        if row is not None and row.model_version_id == target.id:
            return row, version  # already there: a retried PUT records no move
        try:
            with session.begin_nested():
                if row is None:
                    row = ModelAlias(tenant_id=tenant.id, name=name, alias=alias)
                    session.add(row)
                row.model_version_id = target.id
                row.updated_at, row.updated_by = utcnow(), actor
                session.add(
                    ModelAliasMove(
                        tenant_id=tenant.id,
                        name=name,
                        alias=alias,
                        from_version=previous,
                        to_version=version,
                        moved_by=actor,
                    )
                )
                session.flush()
        except IntegrityError:
            continue  # another request created it meanwhile: move that one
        return row, version
    raise InvalidRequest(f"alias {alias!r} is contended; retry", field="alias")


def delete_alias(*, session: Session, tenant: Tenant, name: str, alias: str, actor: str) -> None:
    row = _alias_row(session, tenant, name, alias)
    if row is None:
        raise ModelNotFound(f"model {name!r} has no alias {alias!r}", field="alias")
    session.add(
        ModelAliasMove(
            tenant_id=tenant.id,
            name=name,
            alias=alias,
            from_version=_version_number(session, row.model_version_id),
            to_version=None,
            moved_by=actor,
        )
    )
    session.delete(row)
    session.flush()


def list_aliases(
    *, session: Session, tenant: Tenant, name: str
) -> tuple[list[tuple[ModelAlias, int]], list[ModelAliasMove]]:
    """The model's aliases with their version numbers, and its alias moves, newest first."""
    current = session.execute(
        select(ModelAlias, ModelVersion.version)
        .join(ModelVersion, ModelVersion.id == ModelAlias.model_version_id)
        .where(ModelAlias.tenant_id == tenant.id, ModelAlias.name == name)
        .order_by(ModelAlias.alias)
    ).all()
    moves = session.scalars(
        select(ModelAliasMove)
        .where(ModelAliasMove.tenant_id == tenant.id, ModelAliasMove.name == name)
        .order_by(ModelAliasMove.id.desc())
        .limit(100)
    ).all()
    return [(row[0], int(row[1])) for row in current], list(moves)


def aliases_by_model(*, session: Session, tenant: Tenant) -> dict[str, dict[str, int]]:
    """``{name: {alias: version}}`` for every model of the tenant."""
    out: dict[str, dict[str, int]] = {}
    rows = session.execute(
        select(ModelAlias.name, ModelAlias.alias, ModelVersion.version)
        .join(ModelVersion, ModelVersion.id == ModelAlias.model_version_id)
        .where(ModelAlias.tenant_id == tenant.id)
    )
    for name, alias, version in rows:
        out.setdefault(name, {})[alias] = int(version)
    return out


def _alias_row(session: Session, tenant: Tenant, name: str, alias: str) -> ModelAlias | None:
    return session.scalar(
        select(ModelAlias).where(
            ModelAlias.tenant_id == tenant.id, ModelAlias.name == name, ModelAlias.alias == alias
        )
    )


def _version_number(session: Session, version_id: str) -> int | None:
    return session.scalar(select(ModelVersion.version).where(ModelVersion.id == version_id))


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
