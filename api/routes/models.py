"""/v1/models: the registry, read-only over REST."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import SessionDep, TenantDep
from core.jobs.schemas import ModelOut, ModelVersionOut
from core.model_versions import lineage
from core.model_versions import service as model_versions
from core.model_versions.lineage import LineageOut
from core.model_versions.orm import ModelVersion

router = APIRouter(prefix="/v1/models", tags=["models"])


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
            "created_at": row.created_at,
        }
    )


@router.get("", response_model=list[ModelOut])
def list_models(session: SessionDep, tenant: TenantDep) -> list[ModelOut]:
    return [
        ModelOut(name=row.name, latest_version=_version_out(session, row), versions=count)
        for row, count in model_versions.list_models(session=session, tenant=tenant)
    ]


@router.get("/{name}/versions", response_model=list[ModelVersionOut])
def list_versions(name: str, session: SessionDep, tenant: TenantDep) -> list[ModelVersionOut]:
    rows = model_versions.list_versions(session=session, tenant=tenant, name=name)
    return [_version_out(session, row) for row in rows]


@router.get("/{name}/versions/{version}/lineage", response_model=LineageOut)
def get_lineage(name: str, version: str, session: SessionDep, tenant: TenantDep) -> LineageOut:
    """Where the version came from (training job, dataset with its content hash, parent
    version, code version, or the import with its checksums) and what was made with it."""
    return lineage.lineage_of(session=session, tenant=tenant, name=name, version=version)
