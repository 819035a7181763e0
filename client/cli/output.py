"""How the CLI shows things to a person: tables, a job summary, a live progress line.
``--json`` bypasses all of it (scripts get the API's own objects)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

Json = dict[str, Any]


def print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=str))


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], out: TextIO = sys.stdout) -> None:
    cells = [[str(c) for c in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    for row in [list(headers), *cells]:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip(), file=out)


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def short_time(value: str | None) -> str:
    # "2026-11-24T21:14:03.123+00:00" → "2026-11-24 21:14:03"
    return value.replace("T", " ")[:19] if value else "-"


def subject(job: Json) -> str:
    """What a job is about, in a few words: the model it trains or reads."""
    request = job.get("request") or {}
    if job["kind"] == "train":
        return f"{request.get('engine')} on {request.get('dataset')} → {request.get('model_name')}"
    if job["kind"] == "generate":
        fmt = request.get("output_format", "png")
        return f"{request.get('count')} images ({fmt}) from {request.get('model')}"
    source = request.get("model") or f"job {str(request.get('source_job'))[:8]}"
    return f"{source} vs {request.get('reference')}"


def progress_text(job: Json) -> str:
    progress = job.get("progress") or {}
    if job["status"] in {"queued", "succeeded"} or not progress:
        return "100%" if job["status"] == "succeeded" else "-"
    fraction = progress.get("fraction") or 0.0
    eta = progress.get("eta_seconds")
    text = f"{100 * fraction:.0f}%"
    if job["status"] == "running" and eta is not None:
        text += f" eta {format_seconds(eta)}"
    return text


def format_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def jobs_table(jobs: Sequence[Json]) -> None:
    table(
        ["ID", "KIND", "STATUS", "PROGRESS", "CREATED", "WHAT"],
        [
            [
                j["id"],
                j["kind"],
                j["status"],
                progress_text(j),
                short_time(j["created_at"]),
                subject(j),
            ]
            for j in jobs
        ],
    )


def job_summary(job: Json) -> None:
    lines = [
        ("id", job["id"]),
        ("kind", job["kind"]),
        ("status", job["status"]),
        ("what", subject(job)),
        ("progress", progress_text(job)),
        ("created", short_time(job.get("created_at"))),
        ("started", short_time(job.get("started_at"))),
        ("completed", short_time(job.get("completed_at"))),
    ]
    if job.get("error"):
        lines.append(("error", f"{job['error']['type']}: {job['error']['message']}"))
    for key, value in _result_lines(job.get("result") or {}):
        lines.append((key, value))
    width = max(len(k) for k, _ in lines)
    for key, value in lines:
        print(f"{key.ljust(width)}  {value}")


def _result_lines(result: Json) -> list[tuple[str, str]]:
    lines: list[tuple[str, str]] = []
    version = result.get("model_version")
    if isinstance(version, dict):
        lines.append(("model", f"{version.get('name')}:{version.get('version')}"))
    for key in ("count", "output_format", "images_at", "artifacts", "manifest", "report"):
        if key in result:
            lines.append((key, str(result[key])))
    metrics = (result.get("summary") or {}).get("metrics") or {}
    for label, values in metrics.items():
        value = values.get("value") if isinstance(values, dict) else values
        unit = values.get("unit") if isinstance(values, dict) else None
        text = f"{value:.4g}" if isinstance(value, int | float) else str(value)
        lines.append((label, f"{text} {unit}" if unit else text))
    return lines


class ProgressLine:
    """A status line for ``jobs wait``: redrawn in place on a terminal; on a pipe or a log,
    one line whenever the status, the stage or the tenth of progress changes."""

    def __init__(self, out: TextIO = sys.stderr) -> None:
        self.out = out
        self.tty = out.isatty()
        self.last_key: tuple[Any, ...] | None = None
        self.width = 0

    def __call__(self, job: Json) -> None:
        progress = job.get("progress") or {}
        metrics = progress.get("metrics") or {}
        shown = " ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
            for k, v in list(metrics.items())[:4]
        )
        stage = progress.get("stage") or ""
        step = f"{progress.get('step', 0)}/{progress.get('total', 0)}" if progress else ""
        text = (
            f"{job['id'][:8]} {job['kind']} {job['status']} {stage} {step} "
            f"{progress_text(job)} {shown}"
        )
        text = " ".join(text.split())
        if self.tty:
            pad = max(0, self.width - len(text))
            print("\r" + text + " " * pad, end="", file=self.out, flush=True)
            self.width = len(text)
            return
        key = (job["status"], stage, int(10 * (progress.get("fraction") or 0)))
        if key != self.last_key:
            print(text, file=self.out, flush=True)
            self.last_key = key

    def close(self) -> None:
        if self.tty and self.width:
            print(file=self.out, flush=True)
