"""Training curves: every step's scalars, written by the worker as it trains and read by
the API (``GET /v1/jobs/{id}/curves``), the metrics.jsonl artifact and the report. (The
table keeps its first name, ``job_metrics``, and the artifact its published one.)"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from core.curves.orm import TrainingPoint

Point = dict[str, float]


def record(*, session: Session, job_id: str, points: Sequence[Point]) -> None:
    """Store ``[{"step": s, "loss": .., ...}]``. A resumed job trains again the steps after
    its last checkpoint: their earlier rows are replaced, so a curve never has two values
    for one step."""
    if not points:
        return
    first = int(min(p["step"] for p in points))
    session.execute(
        delete(TrainingPoint).where(TrainingPoint.job_id == job_id, TrainingPoint.step >= first)
    )
    session.execute(
        insert(TrainingPoint),
        [
            {"job_id": job_id, "step": int(p["step"]), "values": _values(p)}
            for p in {int(p["step"]): p for p in points}.values()
        ],
    )


def _values(point: Point) -> dict[str, Any]:
    return {k: v for k, v in point.items() if k != "step"}


def page(
    *, session: Session, job_id: str, every: int = 1, after: int | None = None, limit: int = 1000
) -> tuple[list[Point], int | None]:
    """Steps divisible by ``every`` (after step ``after``), oldest first, and the cursor
    (the last step given) when more follow."""
    query = select(TrainingPoint.step, TrainingPoint.values).where(TrainingPoint.job_id == job_id)
    if every > 1:
        query = query.where(TrainingPoint.step % every == 0)
    if after is not None:
        query = query.where(TrainingPoint.step > after)
    rows = session.execute(query.order_by(TrainingPoint.step).limit(limit + 1)).all()
    points = [{"step": float(step), **values} for step, values in rows[:limit]]
    return points, int(rows[limit - 1][0]) if len(rows) > limit else None


def iter_points(*, session: Session, job_id: str, batch: int = 5000) -> Iterator[Point]:
    """Every step of the job in order, read ``batch`` rows at a time."""
    after: int | None = None
    while True:
        points, after = page(session=session, job_id=job_id, after=after, limit=batch)
        yield from points
        if after is None:
            return


def thinned(points: Sequence[Point], most: int = 500) -> list[Point]:
    """At most ``most`` evenly spaced points, the last one kept (for plots)."""
    if len(points) <= most:
        return list(points)
    stride = -(-len(points) // most)
    kept = list(points[::stride])
    return kept if kept[-1] is points[-1] else [*kept, points[-1]]


def to_jsonl(points: Iterator[Point]) -> Iterator[bytes]:
    for point in points:
        step = int(point["step"])
        yield (json.dumps({**point, "step": step}, separators=(",", ":")) + "\n").encode()
