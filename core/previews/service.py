"""Previews, the playground's grids drawn live from a model (not a dataset's thumbnail,
nor a job's sample grid): validate and plan a grid, hand it to the preview worker through
a row, read it back. The row's status moves queued → running → succeeded | failed, each step a
compare-and-set UPDATE, so a redelivered message never draws a grid twice."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any, TypedDict

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from core import catalog
from core.db import as_utc, utcnow
from core.errors import InvalidRequest, PreviewNotFound
from core.jobs.admission import check_labels, check_sample_options
from core.model_versions import service as model_versions
from core.model_versions.orm import ModelVersion
from core.previews.orm import Preview
from core.previews.schemas import MAX_PREVIEW_IMAGES, PreviewIn, PreviewOut
from core.storage import Storage
from core.tenants.orm import Tenant

PER_ROW_DEFAULT = 8


class Plan(TypedDict):
    """What the preview worker draws (stored as the row's ``request``)."""

    rows: list[int] | None  # the class of each grid row; None for an unconditional model
    counts: list[int]  # images in each row
    columns: int
    count: int
    seed: int
    scale: int | str  # pixels per sample pixel, or "auto"; rows planned before it: 1
    options: dict[str, Any]  # sampling options (steps, guidance_scale, ...)


def plan(preview_in: PreviewIn, version: ModelVersion) -> Plan:
    """The grid to draw: ``rows`` (a class per row, or None when unconditional), the
    images in each row, and the columns. Raises InvalidRequest naming the field."""
    spec = version.spec
    conditional = bool(spec.get("conditional", True))
    check_labels(preview_in.labels, spec, version.name)
    check_sample_options(preview_in.config.options(), version.engine, "config")
    if not conditional:
        count = preview_in.count or 16
        columns = math.ceil(math.sqrt(count))
        counts = [min(columns, count - start) for start in range(0, count, columns)]
        return _planned(None, counts, columns, preview_in)
    classes = preview_in.labels
    if classes is None:
        classes = list(range(int(spec.get("num_classes", 1))))
    if len(set(classes)) != len(classes):
        raise InvalidRequest("labels: give each class once (one grid row each)", field="labels")
    if len(classes) > MAX_PREVIEW_IMAGES:
        raise InvalidRequest(
            f"labels: at most {MAX_PREVIEW_IMAGES} classes fit a preview", field="labels"
        )
    count = preview_in.count or len(classes) * min(
        PER_ROW_DEFAULT, MAX_PREVIEW_IMAGES // len(classes)
    )
    if count < len(classes):
        raise InvalidRequest(
            f"count: {len(classes)} classes need at least {len(classes)} images (one a row); "
            "ask for fewer labels or a larger count",
            field="count",
        )
    base, extra = divmod(count, len(classes))
    counts = [base + (1 if i < extra else 0) for i in range(len(classes))]
    return _planned(classes, counts, max(counts), preview_in)


def _planned(
    rows: list[int] | None, counts: list[int], columns: int, preview_in: PreviewIn
) -> Plan:
    return {
        "rows": rows,
        "counts": counts,
        "columns": columns,
        "count": sum(counts),
        "seed": preview_in.seed,
        "scale": preview_in.scale,
        "options": preview_in.config.options(),
    }


def create(*, session: Session, tenant: Tenant, ref: str, preview_in: PreviewIn) -> Preview:
    version = model_versions.resolve(session=session, tenant=tenant, ref=ref, field="ref")
    if version.engine not in catalog.ENGINES:
        # An imported pipeline draws from prompts, which a preview has none of.
        raise InvalidRequest(
            f"ref: {version.name}:{version.version} is an imported {version.engine} pipeline; "
            "previews draw from our engines' models (make its images with a txt2img job)",
            field="ref",
        )
    preview = Preview(
        tenant_id=tenant.id,
        model_version_id=version.id,
        request=dict(plan(preview_in, version)),
        status="queued",
        created_at=utcnow(),
    )
    session.add(preview)
    session.flush()
    return preview


def get(*, session: Session, tenant: Tenant, preview_id: str) -> Preview:
    row = session.scalar(
        select(Preview).where(Preview.id == preview_id, Preview.tenant_id == tenant.id)
    )
    if row is None:
        raise PreviewNotFound(f"no preview {preview_id} for this tenant (kept for an hour)")
    return row


def move(*, session: Session, preview_id: str, source: str, target: str, **values: Any) -> bool:
    """Compare-and-set ``source → target``; False when the row was not in ``source``."""
    if target in {"succeeded", "failed"}:
        values.setdefault("completed_at", utcnow())
    result = session.execute(
        update(Preview)
        .where(Preview.id == preview_id, Preview.status == source)
        .values(status=target, **values)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


def purge(*, session: Session, ttl_s: int) -> list[str]:
    """Delete previews older than ``ttl_s``; returns their image keys to delete."""
    cutoff = utcnow() - timedelta(seconds=ttl_s)
    keys = list(
        session.scalars(
            select(Preview.image_key).where(
                Preview.created_at < cutoff, Preview.image_key.is_not(None)
            )
        )
    )
    session.execute(delete(Preview).where(Preview.created_at < cutoff))
    return [k for k in keys if k]


def to_out(
    preview: Preview, version: ModelVersion, *, base_url: str, storage: Storage, url_ttl_s: int
) -> PreviewOut:
    urls = {"get": f"{base_url}/v1/previews/{preview.id}"}
    if preview.status == "succeeded" and preview.image_key:
        urls["image"] = storage.presign(preview.image_key, url_ttl_s)
    return PreviewOut.model_validate(
        {
            "id": preview.id,
            "status": preview.status,
            "model_version": model_versions.summary(version),
            "request": preview.request,
            "error": preview.error,
            "cache_hit": preview.cache_hit,
            "created_at": as_utc(preview.created_at),
            "completed_at": as_utc(preview.completed_at) if preview.completed_at else None,
            "urls": urls,
        }
    )
