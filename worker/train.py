"""Train jobs: dataset (built-in or uploaded) → engine.train (checkpointed, resumable;
fine-tuned from a parent version with init_from) → weights + preview → an outcome whose
new model version, with its lineage, the runner registers as it ends the job."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from core import catalog
from core.db import session_scope
from core.errors import ModelNotFound
from core.jobs.schemas import TrainDDPM, TrainEBM, TrainGAN
from core.model_versions import service as model_versions
from core.model_versions.orm import ModelVersion
from models import engine_options, engines
from models.engine_options.base import SELECTION_OPTIONS
from models.engines.base import Hooks
from models.engines.runtime.resume import RESUMABLE_CHANGES
from worker import curves, launch, scoring
from worker.context import JobContext
from worker.datasets import load as dataset_loader
from worker.images import grid_png
from worker.lineage import code_version
from worker.outcome import File, NewVersion, Outcome
from worker.storage_io import download_prefix

Request = TrainDDPM | TrainGAN | TrainEBM
CHECKPOINT = "checkpoint"
STEP = f"{CHECKPOINT}/step"  # written last: a checkpoint without it is half uploaded


def run(ctx: JobContext[Request]) -> Outcome:
    request = ctx.request
    name, split = catalog.parse_dataset_ref(request.dataset, default_split="train")
    # The options as the request stored them (the engines' options classes are pydantic
    # dataclasses); those left out take the engine's defaults.
    stored = request.model_dump(mode="json")["config"]
    config: dict[str, Any] = {k: v for k, v in stored.items() if v is not None}
    engine = engines.get(request.engine)
    parent, parent_dir = _parent(ctx)
    if parent is not None:
        # Fine-tuning keeps the parent's architecture and recipe unless the request says
        # otherwise; how long to run, and whether privately (the parent's δ was resolved
        # for its own data), is the new job's own business. A parent saved before an
        # option existed is read as it was built (options.saved).
        saved = engine_options.CONFIGS[engine.name].saved(parent.config)
        # The sampling defaults are chosen again for the new weights (keep-best tunes them).
        options = engine_options.CONFIGS[engine.name]
        own = RESUMABLE_CHANGES | SELECTION_OPTIONS | options.SAMPLING_DEFAULTS | {"privacy"}
        inherited = {k: v for k, v in saved.items() if k not in own}
        config = {**inherited, **config}
    if request.gpus > 1:
        # Held-out scoring runs in one process: a data-parallel run keeps its last weights
        # (submit refuses the scoring options with gpus > 1).
        config["eval_every"] = 0
    if "image_size" not in config:
        size = dataset_loader.default_image_size(ctx, name)
        if size is not None:
            config["image_size"] = size

    ctx.progress.set_stage("load_data")
    data = dataset_loader.load(ctx, name, split, config.get("image_size"))
    lineage = {
        "created_by": "train",
        "code_version": code_version(),
        "dataset": {"ref": f"{name}:{split}", **dataset_loader.describe(ctx, name)},
        "parent": model_versions.summary(parent) if parent is not None else None,
    }

    ctx.progress.set_stage("train")
    ctx.progress.max_seconds = config.get("max_seconds")
    hooks = Hooks(
        progress=ctx.progress,
        should_stop=ctx.should_stop,
        checkpoint=lambda step, directory: _upload_checkpoint(ctx, step, directory),
        resume_from=_download_checkpoint(ctx),
        init_from=parent_dir,
        scoring=scoring.scoring(ctx, name, split, config.get("image_size")),
        evaluated=scoring.evaluated(ctx),
    )
    resumed_from_step = _checkpoint_step(ctx) if hooks.resume_from is not None else None
    if request.gpus > 1:
        trained = launch.train(
            request.engine,
            dataset=data,
            config=config,
            hooks=hooks,
            gpus=request.gpus,
            directory=ctx.workdir / "ranks",
        )
    else:
        trained = engine.train(data, config, hooks)
    ctx.progress.flush()
    # What a private run spent (ε, δ, noise, sampling rate, steps, C, accountant); null:
    # not differentially private.
    lineage["privacy"] = trained.privacy
    # Which weights were kept and by what measure, and the held-out images it used (a
    # slice of the training split is not in the model's training set); null: not scored.
    selection = scoring.summary(trained.selection)
    lineage["selection"] = selection

    ctx.progress.set_stage("save")
    ctx.progress.max_seconds = None
    model_dir = ctx.workdir / "model"
    # The weights are stored now, and announced by an output event, while the preview is
    # sampled: they are files written while running, part of the outcome as stored.
    files = [
        File(f"model/{path.name}", ctx.put_file(f"model/{path.name}", path))
        for path in engine.save(trained, model_dir)
    ]
    ctx.output(model=[file.name for file in files])
    per_class = 10
    labels = (
        torch.arange(trained.num_classes).repeat_interleave(per_class)
        if trained.config.get("conditional", True)
        else None
    )
    n = trained.num_classes * per_class
    preview = engine.sample(trained, n, labels, seed=0)
    scale = max(1, 64 // preview.shape[-1])
    files.append(File("grid.png", grid_png(preview.numpy(), nrow=per_class, scale=scale)))
    files += curves.export(ctx)

    spec = {
        "num_classes": trained.num_classes,
        "class_names": trained.class_names,
        "image_shape": list(trained.image_shape),
        "conditional": bool(trained.config.get("conditional", True)),
        "train_examples": len(data) - _sliced(selection),
        "dataset_split": split,
    }
    train_metrics = {k: float(v) for k, v in trained.metrics.items()}

    return Outcome(
        result={
            "metrics": train_metrics,
            "spec": spec,
            "privacy": trained.privacy,
            # The step an earlier attempt's checkpoint let this run start from (a worker
            # lost or preempted mid-run); null: trained from the first step.
            "resumed_from_step": resumed_from_step,
            "selection": selection,
        },
        files=files,
        register=NewVersion(
            name=request.model_name,
            engine=request.engine,
            dataset=f"{name}:{split}",
            config=trained.config,
            spec=spec,
            metrics={"training": train_metrics, "selection": selection},
            lineage=lineage,
            parent_id=parent.id if parent is not None else None,
        ),
    )


def _sliced(selection: dict[str, Any] | None) -> int:
    """Training images held out for scoring (a slice of the training split), not trained on."""
    held_out = (selection or {}).get("held_out") or {}
    return int(held_out["count"]) if held_out.get("source") == "slice" else 0


def _parent(ctx: JobContext[Request]) -> tuple[ModelVersion | None, Path | None]:
    """The version a fine-tuning starts from (resolved at submit) and its files."""
    if ctx.job.model_version_id is None:
        return None, None
    with session_scope(ctx.settings.database_url) as session:
        parent = session.get(ModelVersion, ctx.job.model_version_id)
        if parent is None:
            raise ModelNotFound("init_from: the model version to start from no longer exists")
        session.expunge(parent)
    directory = ctx.workdir / "parent"
    download_prefix(ctx.storage, parent.checkpoint_uri, directory)
    return parent, directory


def _upload_checkpoint(ctx: JobContext[Request], step: int, directory: Path) -> None:
    """Replace the job's checkpoint in storage; the step marker is written last so a
    half-uploaded checkpoint is never taken for a whole one. A job stopped for any reason
    but the worker's shutdown (canceled, taken back) will not resume here: its checkpoint
    at the stop is dropped."""
    if ctx.should_stop.stopped and not ctx.should_stop.preempted:
        return
    ctx.storage.delete_prefix(ctx.key(STEP))
    for path in sorted(directory.iterdir()):
        if path.is_file():
            ctx.put_file(f"{CHECKPOINT}/files/{path.name}", path)
    ctx.put_bytes(STEP, json.dumps({"step": step}).encode(), "application/json")


def _checkpoint_step(ctx: JobContext[Request]) -> int:
    return int(json.loads(ctx.storage.get_bytes(ctx.key(STEP)))["step"])


def _download_checkpoint(ctx: JobContext[Request]) -> Path | None:
    """A previous attempt's checkpoint (the worker died mid-run), to resume from."""
    if not ctx.storage.exists(ctx.key(STEP)):
        return None
    target = ctx.workdir / "resume"
    for obj in ctx.storage.list(ctx.key(f"{CHECKPOINT}/files/")):
        ctx.storage.get_file(obj.key, target / obj.key.rsplit("/", 1)[-1])
    return target
