"""``synthgen datasets …``: upload a dataset file (create, send, complete, wait for its
validation, with progress), list, show and delete datasets. Jobs name a dataset by its
name ("dataset": "mnist100") or its id."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from synthgen_client.cli import output
from synthgen_client.cli.errors import EXIT_JOB_FAILED, UsageError
from synthgen_client.resources import guess_format
from synthgen_client.sdk import Client

Json = dict[str, Any]


class _Progress:
    """The upload's bytes, then the validation's steps, on stderr (nothing when quiet)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.shown: tuple[str, int] | None = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self.quiet:
            return
        tenth = int(10 * done / total) if total else 0
        if (stage, tenth) == self.shown:
            return
        self.shown = (stage, tenth)
        amount = (
            f"{output.human_size(done)} of {output.human_size(total)}"
            if stage == "upload"
            else (f"{done}/{total}" if total else "started")
        )
        print(f"{stage}: {amount}", file=sys.stderr, flush=True)


def _row(d: Json) -> list[Any]:
    shape = "x".join(str(s) for s in d.get("image_shape") or []) or "-"
    return [
        d["name"],
        d["id"],
        d["status"],
        d.get("num_images") if d.get("num_images") is not None else "-",
        len(d.get("classes") or []) or "-",
        shape,
        output.short_time(d.get("created_at")),
    ]


HEADERS = ["NAME", "ID", "STATUS", "IMAGES", "CLASSES", "SHAPE", "CREATED"]


def upload(client: Client, args: argparse.Namespace) -> int:
    path = Path(args.file)
    if not path.is_file():
        raise UsageError(f"no file {path}")
    try:
        fmt = args.format or guess_format(path)
    except ValueError as exc:
        raise UsageError(f"{exc} with --format") from exc
    options: Json = {}
    if args.test_fraction is not None:
        options["test_fraction"] = args.test_fraction
    if args.skip_corrupt:
        options["skip_corrupt"] = True
    dataset = client.datasets.upload(
        path,
        name=args.name or path.name.split(".")[0],
        fmt=fmt,
        wait=not args.no_wait,
        on_progress=_Progress(args.quiet),
        **options,
    )
    if args.json:
        output.print_json(dataset)
    else:
        _summary(dataset)
    if dataset["status"] == "invalid":
        return EXIT_JOB_FAILED
    return 0


def _summary(d: Json) -> None:
    lines = [("name", d["name"]), ("id", d["id"]), ("status", d["status"])]
    if d.get("error"):
        lines.append(("error", f"{d['error']['type']}: {d['error']['message']}"))
    if d.get("classes"):
        lines.append(("classes", ", ".join(d["classes"])))
        lines.append(("images", str(d.get("num_images"))))
        lines.append(("shape", "x".join(str(s) for s in d.get("image_shape") or [])))
        split = d.get("split") or {}
        for part in ("train", "test"):
            lines.append((part, str(sum((split.get(part) or {}).values()))))
    if d["status"] == "ready":
        lines.append(("use", f'"dataset": "{d["name"]}" in a train job'))
    width = max(len(k) for k, _ in lines)
    for key, value in lines:
        print(f"{key.ljust(width)}  {value}")


def list_datasets(client: Client, args: argparse.Namespace) -> int:
    return output.listing(
        args.json,
        client.datasets.list(),
        HEADERS,
        _row,
        empty="no datasets; upload one with: synthgen datasets upload FILE --name NAME",
    )


def _get(client: Client, ref: str) -> Json:
    try:
        return client.datasets.get(ref)
    except LookupError as exc:
        raise UsageError(str(exc)) from exc


def get(client: Client, args: argparse.Namespace) -> int:
    dataset = _get(client, args.ref)
    output.print_json(dataset) if args.json else _summary(dataset)
    return 0


def remove(client: Client, args: argparse.Namespace) -> int:
    dataset = _get(client, args.ref)
    client.datasets.delete(dataset["id"])
    if not args.quiet:
        print(f"deleted dataset {dataset['name']} ({dataset['id']})")
    return 0


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    datasets = sub.add_parser("datasets", help="upload and manage datasets", parents=[common])
    actions = datasets.add_subparsers(dest="action", required=True, metavar="ACTION")

    p = actions.add_parser(
        "upload",
        help="upload a dataset file and wait for its validation (exit 4 if invalid)",
        parents=[common],
    )
    p.add_argument("file", help="zip or tar ImageFolder, .npz, or CIFAR .bin")
    p.add_argument("--name", help="unique among your datasets (default: the file's name)")
    p.add_argument(
        "--format",
        choices=["zip", "tar", "npz", "cifar", "parquet", "webdataset"],
        help="default: by suffix (.zip, .tar*, .npz, .bin, .parquet); webdataset shards: say so",
    )
    p.add_argument("--test-fraction", type=float, help="share held out as test (default 0.2)")
    p.add_argument("--skip-corrupt", action="store_true", help="leave out undecodable images")
    p.add_argument("--no-wait", action="store_true", help="return once the upload is sent")
    p.set_defaults(run=upload)

    p = actions.add_parser("ls", help="list your datasets, newest first", parents=[common])
    p.set_defaults(run=list_datasets)

    for name, func, text in (("get", get, "show a dataset"), ("rm", remove, "delete a dataset")):
        p = actions.add_parser(name, help=text, parents=[common])
        p.add_argument("ref", help="the dataset's name or id")
        p.set_defaults(run=func)
