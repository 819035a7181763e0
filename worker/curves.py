"""A train job's curves as files: ``metrics.jsonl`` (one JSON object per step, from the
rows written while it trained, so a resumed job's file covers every step) and, when the
``tensorboard`` package is installed, TensorBoard event files under ``tensorboard/``."""

from __future__ import annotations

import importlib.util
import json
import logging
from pathlib import Path

from core.curves import service as curves
from core.db import session_scope
from worker.context import JobContext
from worker.outcome import File

log = logging.getLogger("synthgen.worker")


def export(ctx: JobContext) -> list[File]:
    """The curves as files in the job's work directory, for its outcome."""
    path = ctx.workdir / "metrics.jsonl"
    with session_scope(ctx.settings.database_url) as session, path.open("wb") as out:
        for line in curves.to_jsonl(curves.iter_points(session=session, job_id=ctx.job.id)):
            out.write(line)
    files = [File("metrics.jsonl", path, "application/x-ndjson")]
    if importlib.util.find_spec("tensorboard") is not None:
        files += _tensorboard(ctx, path)
    return files


def _tensorboard(ctx: JobContext, jsonl: Path) -> list[File]:
    from torch.utils.tensorboard import SummaryWriter

    directory = ctx.workdir / "tensorboard"
    with SummaryWriter(log_dir=str(directory)) as writer, jsonl.open() as lines:
        for line in lines:
            point = json.loads(line)
            step = point.pop("step")
            for key, value in point.items():
                writer.add_scalar(f"train/{key}", value, global_step=step)
    return [
        File(f"tensorboard/{path.name}", path)
        for path in sorted(directory.iterdir())
        if path.is_file()
    ]
