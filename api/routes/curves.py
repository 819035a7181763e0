"""GET /v1/jobs/{id}/curves: a train job's per-step scalars (its training curves), live
while it trains. ``GET /v1/jobs/{id}/metrics`` is the same route under its first name,
kept (deprecated in OpenAPI) for the clients written against it: "metrics" alone now
means the Prometheus exposition (api/metrics.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.deps import SessionDep, TenantDep
from core.curves import service as curves
from core.jobs import queries

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


class CurvePage(BaseModel):
    items: list[dict[str, Any]] = Field(
        description='[{"step": 10, "loss": 0.31, "lr": 0.001, "grad_norm": 1.2, '
        '"step_time_s": 0.05}, ...] oldest first'
    )
    next_cursor: int | None = Field(description="pass as `after` for the next page")


Every = Annotated[
    int,
    Query(
        ge=1,
        le=1_000_000,
        description="only steps divisible by N, and every held-out evaluation's step (its "
        "row holds eval_fd, best_step), which thinning never drops",
    ),
]
After = Annotated[int | None, Query(ge=0, le=2**31 - 1, description="only steps after this one")]
Limit = Annotated[int, Query(ge=1, le=10_000)]


@router.get("/{job_id}/curves", response_model=CurvePage)
def job_curves(
    job_id: str,
    session: SessionDep,
    tenant: TenantDep,
    every: Every = 1,
    after: After = None,
    limit: Limit = 1000,
) -> CurvePage:
    queries.get_job(session=session, tenant=tenant, job_id=job_id)  # 404 for another tenant
    items, cursor = curves.page(
        session=session, job_id=job_id, every=every, after=after, limit=limit
    )
    return CurvePage(items=items, next_cursor=cursor)


@router.get(
    "/{job_id}/metrics",
    response_model=CurvePage,
    deprecated=True,
    description="The first name of `GET /v1/jobs/{job_id}/curves`, which answers the same; "
    "use that one.",
)
def job_metrics(
    job_id: str,
    session: SessionDep,
    tenant: TenantDep,
    every: Every = 1,
    after: After = None,
    limit: Limit = 1000,
) -> CurvePage:
    # The operation id (job_metrics) stays what generated clients were made with.
    return job_curves(job_id, session, tenant, every, after, limit)
