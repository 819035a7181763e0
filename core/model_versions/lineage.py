"""Lineage of a model version: where it came from and what came of it.

Written once at registration (``ModelVersion.lineage``) by the train or import job::

    {"created_by": "train" | "import", "code_version": "synthgen 0.1.0 (abc123)",
     "dataset": {"ref": "ds_…:train", "id": "ds_…", "name": …, "sha256": …}
                | {"ref": "digits:train", "builtin": true},
     "parent": {"id", "name", "version"} | None,          # fine-tuned from (init_from)
     "privacy": {"epsilon", "delta", "noise_multiplier", "sample_rate", "steps",
                 "max_grad_norm", "accountant", ...} | None,  # None: not private
     "selection": {"keep", "eval_every", "chosen", "last", "held_out", ...} | None,
                                                          # None: not scored (keep-best)
     "import": {"id", "source", "format", "archive_sha256", "checksums": {path: sha256}}}

and read here together with what the registry knows around it: the chain of ancestors,
the versions fine-tuned from this one, and the jobs that made datasets with it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db import as_utc
from core.errors import InvalidRequest
from core.jobs.orm import Job
from core.jobs.states import JobKind, JobStatus
from core.model_versions import service as model_versions
from core.model_versions.orm import ModelVersion
from core.tenants.orm import Tenant

MAX_ANCESTORS = 100  # a parent chain is a tree walk; bound it against any cycle


class VersionRef(BaseModel):
    id: str
    name: str
    version: int
    engine: str


class MadeWith(BaseModel):
    """A job that made a dataset (generate, txt2img) or a report (evaluate) with the version."""

    job_id: str
    kind: str
    status: str
    created_at: datetime
    count: int | None


class LineageOut(BaseModel):
    model_version: VersionRef
    created_by: str
    train_job_id: str | None
    dataset: dict[str, Any] | None
    code_version: str | None
    parent: VersionRef | None
    ancestors: list[VersionRef]
    children: list[VersionRef]
    imported: dict[str, Any] | None
    privacy: dict[str, Any] | None = Field(
        description="what differentially private training spent: epsilon, delta, "
        "noise_multiplier, sample_rate, steps, max_grad_norm, accountant, ...; null: the "
        "version was not trained with differential privacy"
    )
    selection: dict[str, Any] | None = Field(
        default=None,
        description="how the weights were chosen while training (keep-best): keep, "
        "eval_every, the chosen and the last evaluation's step and scores, an early stop, "
        "the held-out images (a slice of the training split, not trained on, or another "
        "split) and the feature space; null: the run was not scored",
    )
    used_by: list[MadeWith]


def _ref(row: ModelVersion) -> VersionRef:
    return VersionRef(id=row.id, name=row.name, version=row.version, engine=row.engine)


def lineage_of(*, session: Session, tenant: Tenant, name: str, version: str) -> LineageOut:
    if not version.isdigit():
        raise InvalidRequest(f"version: {version!r} is not a version number", field="version")
    row = model_versions.resolve(session=session, tenant=tenant, ref=f"{name}:{version}")
    recorded = row.lineage or {}
    ancestors: list[VersionRef] = []
    current = row
    while current.parent_id is not None and len(ancestors) < MAX_ANCESTORS:
        parent = session.get(ModelVersion, current.parent_id)
        if parent is None or parent.tenant_id != tenant.id:
            break
        ancestors.append(_ref(parent))
        current = parent
    children = session.scalars(
        select(ModelVersion)
        .where(ModelVersion.parent_id == row.id, ModelVersion.tenant_id == tenant.id)
        .order_by(ModelVersion.created_at)
    )
    used = session.scalars(
        select(Job)
        .where(
            Job.model_version_id == row.id,
            Job.tenant_id == tenant.id,
            Job.kind.in_([JobKind.generate, JobKind.txt2img, JobKind.evaluate]),
            Job.status == JobStatus.succeeded,
        )
        .order_by(Job.created_at)
    )
    return LineageOut(
        model_version=_ref(row),
        created_by=str(recorded.get("created_by", "train" if row.train_job_id else "unknown")),
        train_job_id=row.train_job_id,
        dataset=recorded.get("dataset"),
        code_version=recorded.get("code_version"),
        parent=ancestors[0] if ancestors else None,
        ancestors=ancestors,
        children=[_ref(child) for child in children],
        imported=recorded.get("import"),
        privacy=recorded.get("privacy"),
        selection=recorded.get("selection"),
        used_by=[
            MadeWith(
                job_id=job.id,
                kind=job.kind,
                status=job.status,
                created_at=as_utc(job.created_at),
                count=(job.result or {}).get("count"),
            )
            for job in used
        ],
    )
