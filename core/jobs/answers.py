"""What the API answers about jobs, artifacts and models: the response models, apart
from the request schemas in core/jobs/schemas.py (which re-exports them)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from core.jobs.states import JobKind, JobStatus


class Progress(BaseModel):
    step: int = 0
    total: int = 0
    fraction: float = 0.0
    eta_seconds: float | None = None
    stage: str | None = None
    metrics: dict[str, float] = Field(default_factory=dict)


class JobError(BaseModel):
    type: str
    message: str


class JobOut(BaseModel):
    id: str
    kind: JobKind
    status: JobStatus
    request: dict[str, Any]
    progress: Progress | None
    result: dict[str, Any] | None
    error: JobError | None
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    attempts: int = Field(description="runs started (a resumed or retried job counts each)")
    preemptions: int = Field(
        description="runs handed back on a worker's shutdown (not failures; they resume)"
    )
    urls: dict[str, str]


class JobPage(BaseModel):
    items: list[JobOut]
    next_cursor: str | None


class ArtifactOut(BaseModel):
    name: str
    size: int
    content_type: str
    url: str


class ArtifactPage(BaseModel):
    items: list[ArtifactOut]
    next_cursor: str | None


class ModelVersionOut(BaseModel):
    id: str
    name: str
    version: int
    aliases: list[str]
    engine: str
    dataset: str
    config: dict[str, Any]
    spec: dict[str, Any]
    metrics: dict[str, Any]
    checkpoint_uri: str
    train_job_id: str | None
    parent_id: str | None = Field(description="the version this one was fine-tuned from")
    privacy: dict[str, Any] | None = Field(
        default=None,
        description="its differential-privacy record (epsilon, delta, noise multiplier, "
        "sampling rate, steps, accountant) when it was trained with DP; null: not private",
    )
    created_at: datetime


class ModelOut(BaseModel):
    name: str
    latest_version: ModelVersionOut
    versions: int
    aliases: dict[str, int] = Field(default_factory=dict, description="alias → version")
