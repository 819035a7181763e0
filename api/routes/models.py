"""/v1/models: the registry (read), and aliases (set, move, remove)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Request, Response, status

from api.deps import SessionDep, TenantDep
from core.db import as_utc
from core.jobs.schemas import ModelOut, ModelVersionOut
from core.model_versions import lineage
from core.model_versions import service as model_versions
from core.model_versions.lineage import LineageOut
from core.model_versions.orm import ModelAlias, ModelVersion
from core.model_versions.schemas import (
    ALIAS_PATTERN,
    AliasesOut,
    AliasIn,
    AliasMoveOut,
    AliasOut,
)

router = APIRouter(prefix="/v1/models", tags=["models"])
AliasName = Annotated[str, Path(pattern=ALIAS_PATTERN)]
VersionNumber = Annotated[str, Path(pattern=r"^[0-9]{1,10}$", description="a version number")]


def _version_out(session: SessionDep, row: ModelVersion) -> ModelVersionOut:
    return ModelVersionOut.model_validate(
        {
            "id": row.id,
            "name": row.name,
            "version": row.version,
            "aliases": model_versions.aliases_of(session=session, version_id=row.id),
            "engine": row.engine,
            "dataset": row.dataset,
            "config": row.config,
            "spec": row.spec,
            "metrics": row.metrics or {},
            "checkpoint_uri": row.checkpoint_uri,
            "train_job_id": row.train_job_id,
            "parent_id": row.parent_id,
            "privacy": (row.lineage or {}).get("privacy"),
            "created_at": row.created_at,
        }
    )


def _actor(request: Request) -> str:
    # The key's first characters: what `synthgen keys revoke --key` takes, never the key.
    return request.headers.get("authorization", "").partition(" ")[2].strip()[:10]


def _alias_out(row: ModelAlias, version: int) -> AliasOut:
    return AliasOut(
        name=row.name,
        alias=row.alias,
        version=version,
        model_version_id=row.model_version_id,
        updated_at=as_utc(row.updated_at) if row.updated_at else None,
        updated_by=row.updated_by,
    )


@router.get("", response_model=list[ModelOut])
def list_models(session: SessionDep, tenant: TenantDep) -> list[ModelOut]:
    aliases = model_versions.aliases_by_model(session=session, tenant=tenant)
    return [
        ModelOut(
            name=row.name,
            latest_version=_version_out(session, row),
            versions=count,
            aliases=aliases.get(row.name, {}),
        )
        for row, count in model_versions.list_models(session=session, tenant=tenant)
    ]


@router.get("/{name}/versions", response_model=list[ModelVersionOut])
def list_versions(name: str, session: SessionDep, tenant: TenantDep) -> list[ModelVersionOut]:
    rows = model_versions.list_versions(session=session, tenant=tenant, name=name)
    return [_version_out(session, row) for row in rows]


@router.get("/{name}/aliases", response_model=AliasesOut)
def list_aliases(name: str, session: SessionDep, tenant: TenantDep) -> AliasesOut:
    model_versions.list_versions(session=session, tenant=tenant, name=name)  # 404 if unknown
    current, moves = model_versions.list_aliases(session=session, tenant=tenant, name=name)
    return AliasesOut(
        items=[_alias_out(row, version) for row, version in current],
        moves=[
            AliasMoveOut(
                alias=m.alias,
                from_version=m.from_version,
                to_version=m.to_version,
                moved_by=m.moved_by,
                moved_at=as_utc(m.moved_at),
            )
            for m in moves
        ],
    )


@router.put("/{name}/aliases/{alias}", response_model=AliasOut)
def set_alias(
    name: str,
    alias: AliasName,
    body: Annotated[AliasIn, Body()],
    request: Request,
    session: SessionDep,
    tenant: TenantDep,
) -> AliasOut:
    row, version = model_versions.set_alias(
        session=session,
        tenant=tenant,
        name=name,
        alias=alias,
        version=body.version,
        actor=_actor(request),
    )
    session.commit()
    return _alias_out(row, version)


@router.delete("/{name}/aliases/{alias}", status_code=status.HTTP_204_NO_CONTENT)
def delete_alias(
    name: str, alias: AliasName, request: Request, session: SessionDep, tenant: TenantDep
) -> Response:
    model_versions.delete_alias(
        session=session, tenant=tenant, name=name, alias=alias, actor=_actor(request)
    )
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{name}/versions/{version}/lineage", response_model=LineageOut)
def get_lineage(
    name: str, version: VersionNumber, session: SessionDep, tenant: TenantDep
) -> LineageOut:
    """Where the version came from (training job, dataset with its content hash, parent
    version, code version, or the import with its checksums) and what was made with it."""
    return lineage.lineage_of(session=session, tenant=tenant, name=name, version=version)
