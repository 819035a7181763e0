"""Train jobs: dataset → engine.train (checkpointed, resumable) → weights + preview in
storage → a new model version, registered in the same transaction that ends the job."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from sqlalchemy.orm import Session

from core import catalog
from core.model_versions import service as model_versions
from models import datasets, engines
from models.engines.base import Hooks
from worker import curves, launch
from worker.outputs import grid_png
from worker.runner import JobContext, finish


def run(ctx: JobContext) -> None:
    request = ctx.job.request
    name, split = catalog.parse_dataset_ref(request["dataset"], default_split="train")
    config: dict[str, Any] = {k: v for k, v in request.get("config", {}).items() if v is not None}
    config.setdefault("image_size", catalog.DEFAULT_IMAGE_SIZE[name])
    engine = engines.get(request["engine"])

    ctx.progress.set_stage("load_data")
    dataset = {"name": name, "split": split, "image_size": config["image_size"]}
    data = datasets.load(**dataset, root=ctx.settings.data_root)

    ctx.progress.set_stage("train")
    ctx.progress.max_seconds = config.get("max_seconds")
    hooks = Hooks(
        progress=ctx.progress,
        should_stop=ctx.should_stop,
        checkpoint=lambda step, directory: _upload_checkpoint(ctx, step, directory),
        resume_from=_download_checkpoint(ctx),
    )
    gpus = int(request.get("gpus", 1))
    if gpus > 1:
        root = str(ctx.settings.data_root) if ctx.settings.data_root else None
        trained = launch.train(
            request["engine"],
            dataset={**dataset, "root": root},
            config=config,
            hooks=hooks,
            gpus=gpus,
            directory=ctx.workdir / "ranks",
        )
    else:
        trained = engine.train(data, config, hooks)
    ctx.progress.flush()

    ctx.progress.set_stage("save")
    ctx.progress.max_seconds = None
    model_dir = ctx.workdir / "model"
    files = engine.save(trained, model_dir)
    objects = [
        (f"model/{path.name}", ctx.storage.put_file(f"{ctx.prefix}/model/{path.name}", path))
        for path in files
    ]
    ctx.output(model=[name for name, _ in objects])
    per_class = 10
    labels = (
        torch.arange(trained.num_classes).repeat_interleave(per_class)
        if trained.config.get("conditional", True)
        else None
    )
    n = trained.num_classes * per_class
    preview = engine.sample(trained, n, labels, seed=0)
    scale = max(1, 64 // preview.shape[-1])
    objects.append(
        (
            "grid.png",
            ctx.storage.put_bytes(
                f"{ctx.prefix}/grid.png", grid_png(preview.numpy(), nrow=per_class, scale=scale)
            ),
        )
    )
    objects += curves.export(ctx)

    spec = {
        "num_classes": trained.num_classes,
        "class_names": trained.class_names,
        "image_shape": list(trained.image_shape),
        "conditional": bool(trained.config.get("conditional", True)),
        "train_examples": len(data),
        "dataset_split": split,
    }
    train_metrics = {k: float(v) for k, v in trained.metrics.items()}

    def register(session: Session) -> dict[str, Any]:
        version = model_versions.register(
            session=session,
            tenant_id=ctx.job.tenant_id,
            name=request["model_name"],
            engine=request["engine"],
            dataset=f"{name}:{split}",
            config=trained.config,
            spec=spec,
            metrics={"training": train_metrics},
            checkpoint_uri=f"{ctx.prefix}/model/",
            train_job_id=ctx.job.id,
        )
        return {
            "model_version": {"id": version.id, "name": version.name, "version": version.version}
        }

    finish(ctx, result={"metrics": train_metrics, "spec": spec}, objects=objects, register=register)


def _upload_checkpoint(ctx: JobContext, step: int, directory: Path) -> None:
    """Replace the job's checkpoint in storage; the step marker is written last so a
    half-uploaded checkpoint is never taken for a whole one. A job stopped for any reason
    but the worker's shutdown (canceled, taken back) will not resume here: its checkpoint
    at the stop is dropped."""
    if ctx.should_stop.stopped and not ctx.should_stop.preempted:
        return
    prefix = f"{ctx.prefix}/checkpoint"
    ctx.storage.delete_prefix(f"{prefix}/step")
    for path in sorted(directory.iterdir()):
        if path.is_file():
            ctx.storage.put_file(f"{prefix}/files/{path.name}", path)
    ctx.storage.put_bytes(f"{prefix}/step", json.dumps({"step": step}).encode(), "application/json")


def _download_checkpoint(ctx: JobContext) -> Path | None:
    """A previous attempt's checkpoint (the worker died mid-run), to resume from."""
    prefix = f"{ctx.prefix}/checkpoint"
    if not ctx.storage.exists(f"{prefix}/step"):
        return None
    target = ctx.workdir / "resume"
    for obj in ctx.storage.list(f"{prefix}/files/"):
        ctx.storage.get_file(obj.key, target / obj.key.rsplit("/", 1)[-1])
    return target
