"""POST /v1/estimates: how long a job would run, asked before submitting it (a resource
of its own: under /v1/jobs the word would read as a job id)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body
from pydantic import BaseModel, Field

from api.deps import SessionDep, SettingsDep, TenantDep
from core.jobs import estimates, submission
from core.jobs.schemas import JobIn

router = APIRouter(prefix="/v1/estimates", tags=["jobs"])


class EstimateOut(BaseModel):
    seconds: float | None = Field(
        description="the job's expected run time once a worker takes it; null: nothing "
        "measured yet to estimate from (basis says why)"
    )
    basis: str = Field(description="what the figure was measured from")


@router.post("", response_model=EstimateOut)
def estimate_job(
    job_in: Annotated[JobIn, Body()],
    session: SessionDep,
    settings: SettingsDep,
    tenant: TenantDep,
) -> EstimateOut:
    """The body of a job, checked as a submit checks it (the same 4xx); nothing is
    written. The figure is the job's work at the speed this tenant's finished jobs of
    the same kind and engine measured."""
    submission.check(session=session, settings=settings, tenant=tenant, job_in=job_in)
    found = estimates.estimate(session=session, tenant=tenant, job_in=job_in)
    return EstimateOut(seconds=found.seconds, basis=found.basis)
