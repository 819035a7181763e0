"""How the CLI shows things to a person: tables, a job summary, a live progress line.
``--json`` bypasses all of it (scripts get the API's own objects)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from tqdm import tqdm

Json = dict[str, Any]


def print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=str))


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], out: TextIO | None = None) -> None:
    """Columns padded to their widest cell, to ``out`` or, as print() does, to the
    ``sys.stdout`` of the moment (not the one of import time: tests and pipes swap it)."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    for row in [list(headers), *cells]:
        line = "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        print(line, file=out or sys.stdout)


def listing(
    as_json: bool,
    items: Sequence[Json],
    headers: Sequence[str],
    row: Callable[[Json], Sequence[Any]],
    *,
    empty: str = "",
    body: Any = None,
) -> int:
    """A list as every listing command prints it: ``body`` (default: the items), the API's
    JSON, with --json; else ``empty`` when there is nothing to list (when given), else a
    table of ``row(item)`` under ``headers``. Returns the exit code, 0."""
    if as_json:
        print_json(items if body is None else body)
    elif not items and empty:
        print(empty)
    else:
        table(headers, [row(item) for item in items])
    return 0


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


def dataset_ref(ref: Any, names: dict[str, str] | None = None) -> str:
    """ "mnist100:train" for an uploaded dataset whose name is known, else the reference."""
    dataset_id, _, split = str(ref).partition(":")
    name = (names or {}).get(dataset_id)
    return f"{name}:{split}" if name and split else name or str(ref)


def subject(job: Json, names: dict[str, str] | None = None) -> str:
    """What a job is about, in a few words: the model it trains or reads; ``names``
    (dataset id → name) shows uploaded datasets by their names."""
    request = job.get("request") or {}
    kind = job["kind"]
    if kind == "train":
        dataset = dataset_ref(request.get("dataset"), names)
        return f"{request.get('engine')} on {dataset} → {request.get('model_name')}"
    if kind == "generate":
        fmt = request.get("output_format", "png")
        return f"{request.get('count')} images ({fmt}) from {request.get('model')}"
    if kind == "evaluate":
        source = request.get("model") or f"job {str(request.get('source_job'))[:8]}"
        return f"{source} vs {dataset_ref(request.get('reference'), names)}"
    if kind == "validate_dataset":
        dataset = request.get("dataset")
        name = request.get("name") or (names or {}).get(str(dataset))
        return f"validate dataset {name} ({dataset})" if name else f"validate dataset {dataset}"
    if kind == "import_model":
        return f"import model ({request.get('import')})"
    if kind == "txt2img":
        return f"{len(request.get('prompts') or {})} classes from {request.get('model')}"
    return str(kind)


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


def jobs_table(jobs: Sequence[Json], names: dict[str, str] | None = None) -> None:
    table(
        ["ID", "KIND", "STATUS", "PROGRESS", "CREATED", "WHAT"],
        [
            [
                j["id"],
                j["kind"],
                j["status"],
                progress_text(j),
                short_time(j["created_at"]),
                subject(j, names),
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
    summary = result.get("summary") or {}
    for label, values in (summary.get("metrics") or {}).items():
        value = values.get("value") if isinstance(values, dict) else values
        unit = values.get("unit") if isinstance(values, dict) else None
        text = f"{value:.4g}" if isinstance(value, int | float) else str(value)
        if isinstance(values, dict) and values.get("interval"):
            low, high = values["interval"]
            text += f" [{low:.3g}, {high:.3g}]"
        if isinstance(values, dict) and isinstance(values.get("floor"), int | float):
            text += f" (real-vs-real {values['floor']:.3g})"
        lines.append((label, f"{text} {unit}" if unit else text))
    if isinstance(summary.get("privacy"), dict):
        lines.append(("privacy audit", privacy_text(summary["privacy"])))
    return lines


def privacy_text(audit: Json) -> str:
    """An evaluate's privacy headline in one line: the copy fraction beside its real-vs-real
    floor and each attack's AUC, or why the audit did not run."""
    if not audit.get("audited"):
        return str(audit.get("note") or "not run")
    parts = []
    copies = audit.get("copy_fraction")
    if isinstance(copies, dict):
        floor = audit.get("copy_fraction_floor") or {}
        parts.append(
            f"copies {_share(copies.get('value'))} [{_share(copies.get('low'))}, "
            f"{_share(copies.get('high'))}] (held-out real images: {_share(floor.get('value'))})"
        )
    for attack in audit.get("membership_inference") or []:
        auc = attack.get("auc") or {}
        parts.append(f"{attack.get('name')}: AUC {auc.get('value', 0):.3f}")
    dp = audit.get("differential_privacy")
    if isinstance(dp, dict) and "epsilon" in dp:
        parts.append(f"trained with DP at ε={dp['epsilon']:.3g}")
    return "; ".join(parts) or "audited"


def dp_text(privacy: Json | None) -> str:
    """A model version's differential-privacy record in a table cell."""
    if not privacy:
        return "-"
    return f"ε={privacy['epsilon']:.3g} δ={privacy['delta']:.1g}"


def _share(value: Any) -> str:
    return f"{value * 100:.1f}%" if isinstance(value, int | float) else "-"


class ProgressLine:
    """Progress for ``jobs wait``: a tqdm bar on a terminal (percent, elapsed, ETA, stage
    and losses); on a pipe or a log, one line whenever the status, the stage or the tenth
    of progress changes."""

    def __init__(self, out: TextIO = sys.stderr) -> None:
        self.out = out
        self.tty = out.isatty()
        self.last_key: tuple[Any, ...] | None = None
        self.bar: tqdm[Any] | None = None

    def __call__(self, job: Json) -> None:
        if self.tty:
            self._draw(job)
            return
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
        key = (job["status"], stage, int(10 * (progress.get("fraction") or 0)))
        if key != self.last_key:
            print(text, file=self.out, flush=True)
            self.last_key = key

    def _draw(self, job: Json) -> None:
        progress = job.get("progress") or {}
        if self.bar is None:
            self.bar = tqdm(
                total=100,
                file=self.out,
                bar_format="{desc} {percentage:3.0f}%|{bar}| {elapsed}<{remaining} {postfix}",
            )
        fraction = 1.0 if job["status"] == "succeeded" else progress.get("fraction") or 0.0
        self.bar.set_description_str(
            f"{job['id'][:8]} {job['kind']} {job['status']} {progress.get('stage') or ''}".strip()
        )
        metrics = progress.get("metrics") or {}
        self.bar.set_postfix_str(
            " ".join(f"{k}={v:.4g}" for k, v in list(metrics.items())[:3] if isinstance(v, float))
        )
        self.bar.update(round(100 * fraction) - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class FilesBar:
    """``on_file(path, done, total)`` for downloads: a tqdm bar over files on a terminal,
    a line every 500 files (and at the end) on a pipe; nothing when ``quiet``."""

    def __init__(self, *, quiet: bool, out: TextIO = sys.stderr) -> None:
        self.quiet, self.out = quiet, out
        self.bar: tqdm[Any] | None = None

    def __enter__(self) -> FilesBar:
        return self

    def __exit__(self, *_: object) -> None:
        if self.bar is not None:
            self.bar.close()

    def __call__(self, path: Path, done: int, total: int) -> None:
        if self.quiet:
            return
        if not self.out.isatty():
            if done == total or done % 500 == 0:
                print(f"downloaded {done}/{total}: {path.name}", file=self.out, flush=True)
            return
        if self.bar is None:
            self.bar = tqdm(total=total, unit="file", desc="download", file=self.out)
        self.bar.set_postfix_str(path.name)
        self.bar.update(done - self.bar.n)
