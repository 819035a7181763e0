"""The ``import_model`` job (cpu queue): an existing model becomes a registered version.

1. fetch: the uploaded archive (size checked first, then expanded with the archive
   checks of worker/datasets/archive.py: no zip-slip, no links, bounded expansion), or
   the files under an allowed s3:// prefix (or one archive there);
2. validate the declared format before anything is registered: a diffusers text-to-image
   pipeline (worker/pipelines.py) or one of our engines' checkpoints (it must load);
3. record a SHA-256 per file (``checksums.json``) and copy the files under
   ``jobs/{job_id}/model/``;
4. return the outcome: the next version of ``model_name`` with its lineage (source,
   archive hash, checksums), which the runner registers, marking the import registered,
   with the job's success, in one transaction.

On failure nothing is registered, the copied files and the upload are deleted, and the
job fails with the reason; reading the import then shows it ``invalid``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from core import catalog
from core.imports import service as imports
from core.imports.orm import ImportStatus, ModelImport
from core.jobs.service_requests import ImportModelIn
from core.model_versions import service as model_versions
from core.storage import S3Storage
from models import engines
from models.engines.base import EngineError
from models.engines.runtime.model_files import MODEL_CONFIG, MODEL_WEIGHTS
from worker import pipelines
from worker.context import JobContext
from worker.datasets.archive import (
    Archive,
    ArchiveTooLarge,
    BadArchive,
    Limits,
    TooManyFiles,
    common_root,
    is_archive,
    safe_name,
)
from worker.lineage import code_version, sha256_file
from worker.outcome import File, NewVersion, Outcome
from worker.pipelines import BadModel
from worker.service_jobs import waiting_row

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")


def run(ctx: JobContext[ImportModelIn]) -> Outcome:
    row = waiting_row(ctx, ModelImport, ctx.request.import_id, ImportStatus.importing, "import")
    ctx.delete_on_failure(ctx.key("model/"), imports.prefix_of(row.id))
    return _import(ctx, row)


def _import(ctx: JobContext[ImportModelIn], row: ModelImport) -> Outcome:
    limits = Limits.for_imports(ctx.settings)
    directory = ctx.workdir / "model"
    directory.mkdir()
    ctx.progress.set_stage("fetch")
    archive_sha256 = _fetch(ctx, row, directory, limits)

    ctx.progress.set_stage("validate")
    files = sorted(p for p in directory.rglob("*") if p.is_file())
    checksums = {p.relative_to(directory).as_posix(): sha256_file(p) for p in files}
    if row.format == "diffusers":
        engine = catalog.PIPELINE_ENGINE
        config, spec = pipelines.validate(directory)
    else:
        engine, config, spec = _validate_checkpoint(directory, checksums)

    # Stored one by one now, the store stage's progress moving with each file.
    ctx.progress.set_stage("store")
    outputs = []
    for done, path in enumerate(files, start=1):
        name = f"model/{path.relative_to(directory).as_posix()}"
        outputs.append(File(name, ctx.put_file(name, path)))
        ctx.progress(done, len(files))
    listing = json.dumps(checksums, indent=1, sort_keys=True).encode()
    outputs.append(File("checksums.json", listing, "application/json"))
    tree_sha256 = hashlib.sha256(
        "".join(f"{path}\t{digest}\n" for path, digest in sorted(checksums.items())).encode()
    ).hexdigest()
    lineage = {
        "created_by": "import",
        "code_version": code_version(),
        "dataset": None,
        "parent": None,
        "import": {
            "id": row.id,
            "format": row.format,
            "source": row.source or "upload",
            "archive_sha256": archive_sha256,
            "tree_sha256": tree_sha256,
            "checksums": checksums,
        },
    }

    ctx.progress.flush()
    return Outcome(
        result={
            "import": row.id,
            "engine": engine,
            "files": len(files),
            "bytes": sum(p.stat().st_size for p in files),
            "tree_sha256": tree_sha256,
        },
        files=outputs,
        register=NewVersion(
            name=row.model_name,
            engine=engine,
            dataset=model_versions.IMPORTED_DATASET,
            config=config,
            spec=spec,
            metrics={},
            lineage=lineage,
            import_id=row.id,
        ),
    )


def _fetch(
    ctx: JobContext[ImportModelIn], row: ModelImport, directory: Path, limits: Limits
) -> str | None:
    """Put the model's files in ``directory``; returns the archive's SHA-256 (None when
    the files came one by one from an s3:// prefix)."""
    archive_path = ctx.workdir / "archive"
    if row.source is None:
        if row.size is not None and row.size > limits.upload_bytes:
            raise ArchiveTooLarge(
                f"the upload is {row.size} bytes, over the limit of {limits.upload_bytes} bytes"
            )
        ctx.storage.get_file(row.upload_key, archive_path)
    else:
        bucket, _, key = row.source[len("s3://") :].partition("/")
        source = S3Storage(
            bucket=bucket,
            endpoint_url=ctx.settings.s3_endpoint_url,
            access_key_id=ctx.settings.aws_access_key_id,
            secret_access_key=ctx.settings.aws_secret_access_key,
            region=ctx.settings.aws_region,
        )
        if not key.endswith(ARCHIVE_SUFFIXES):
            _copy_prefix(source, key, directory, limits)
            return None
        found = [obj for obj in source.list(key) if obj.key == key]
        if not found:
            raise BadArchive(f"{row.source} does not exist")
        if found[0].size > limits.upload_bytes:
            raise ArchiveTooLarge(f"{row.source} is over the limit of {limits.upload_bytes} bytes")
        source.get_file(key, archive_path)
    if not is_archive(archive_path):
        raise BadArchive("the upload is not a zip or tar archive of the model's directory")
    archive = Archive(archive_path, limits)
    archive.extract(directory, strip=common_root([m.name for m in archive.members]))
    digest = sha256_file(archive_path)
    archive_path.unlink()
    return digest


def _copy_prefix(source: S3Storage, key: str, directory: Path, limits: Limits) -> None:
    prefix = key.rstrip("/") + "/" if key else ""
    objects = [obj for obj in source.list(prefix) if not obj.key.endswith("/")]
    if not objects:
        raise BadArchive(f"nothing is stored under s3://{source.bucket}/{prefix}")
    if len(objects) > limits.files:
        raise TooManyFiles(f"more than {limits.files} files under the prefix, the limit")
    if sum(obj.size for obj in objects) > limits.expanded_bytes:
        raise ArchiveTooLarge(f"the files add up to more than {limits.expanded_bytes} bytes")
    for obj in objects:
        source.get_file(obj.key, directory / safe_name(obj.key[len(prefix) :]))


def _validate_checkpoint(
    directory: Path, checksums: dict[str, str]
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(engine, config, spec) of one of our engines' checkpoints, or BadModel."""
    if set(checksums) != {MODEL_CONFIG, MODEL_WEIGHTS}:
        raise BadModel(
            f"a synthgen checkpoint is {MODEL_CONFIG} and {MODEL_WEIGHTS} alone (what a train "
            f"job stores under model/); found {', '.join(sorted(checksums))}"
        )
    try:
        description = json.loads((directory / MODEL_CONFIG).read_text())
        engine_name = str(description["engine"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise BadModel(f"{MODEL_CONFIG} does not say which engine wrote it") from None
    if engine_name not in catalog.ENGINES:
        raise BadModel(f"{MODEL_CONFIG} names engine {engine_name!r}; engines: {catalog.ENGINES}")
    try:
        trained = engines.get(engine_name).load(directory)
    except (EngineError, RuntimeError, KeyError, ValueError, TypeError) as exc:
        raise BadModel(f"the checkpoint does not load: {exc}") from None
    spec = {
        "num_classes": trained.num_classes,
        "class_names": trained.class_names,
        "image_shape": list(trained.image_shape),
        "conditional": bool(trained.config.get("conditional", True)),
        "train_examples": 0,
        "dataset_split": "",
    }
    return engine_name, trained.config, spec
