"""GET /v1/jobs/{id}/metrics: a train job's per-step scalars, live while it trains."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.deps import SessionDep, TenantDep
from core.curves import service as curves
from core.jobs import queries

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


class MetricsPage(BaseModel):
    items: list[dict[str, Any]] = Field(
        description='[{"step": 10, "loss": 0.31, "lr": 0.001, "grad_norm": 1.2, '
        '"step_time_s": 0.05}, ...] oldest first'
    )
    next_cursor: int | None = Field(description="pass as `after` for the next page")


@router.get("/{job_id}/metrics", response_model=MetricsPage)
def job_metrics(
    job_id: str,
    session: SessionDep,
    tenant: TenantDep,
    every: Annotated[int, Query(ge=1, le=1_000_000, description="only steps divisible by N")] = 1,
    after: Annotated[
        int | None, Query(ge=0, le=2**31 - 1, description="only steps after this one")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> MetricsPage:
    queries.get_job(session=session, tenant=tenant, job_id=job_id)  # 404 for another tenant
    items, cursor = curves.page(
        session=session, job_id=job_id, every=every, after=after, limit=limit
    )
    return MetricsPage(items=items, next_cursor=cursor)
