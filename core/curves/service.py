"""Training curves: every step's scalars, written by the worker as it trains and read by
the API (``GET /v1/jobs/{id}/curves``), the metrics.jsonl artifact and the report. (The
table keeps its first name, ``job_metrics``, and the artifact its published one.)"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import delete, insert, or_, select
from sqlalchemy.orm import Session

from core.curves.orm import TrainingPoint

Point = dict[str, float]

EVALUATION_TERM = "best_step"
"""The term every held-out evaluation's row holds (keep-best, worker/scoring.py) and no
other row does: thinning keeps those rows, since they are a few among thousands of steps
and the chart of the scores is made of nothing else."""


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
    """Steps divisible by ``every`` and every evaluation's step (after step ``after``),
    oldest first, and the cursor (the last step given) when more follow."""
    query = select(TrainingPoint.step, TrainingPoint.values).where(TrainingPoint.job_id == job_id)
    if every > 1:
        scored = TrainingPoint.values[EVALUATION_TERM].as_float().is_not(None)
        query = query.where(or_(TrainingPoint.step % every == 0, scored))
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
    """About ``most`` evenly spaced points, the last one and every evaluation's kept (for
    plots)."""
    if len(points) <= most:
        return list(points)
    stride = -(-len(points) // most)
    last = len(points) - 1
    return [p for i, p in enumerate(points) if i % stride == 0 or i == last or EVALUATION_TERM in p]


def to_jsonl(points: Iterator[Point]) -> Iterator[bytes]:
    for point in points:
        step = int(point["step"])
        yield (json.dumps({**point, "step": step}, separators=(",", ":")) + "\n").encode()
