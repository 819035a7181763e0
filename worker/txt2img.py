"""txt2img jobs: an imported diffusers text-to-image pipeline makes a labelled dataset
from prompts per class.

Image i of class c (labels follow the order of the request's ``prompts``) takes the c's
prompts in turn (its own, then the templates, "{class}" filled in) and its own seed,
``seed + global index``, so an image does not depend on the batch it was made in. The
images go to storage as they come, in the writers generate jobs use (ImageFolder by
default: ``images.zip`` as class_name/000000.png, plus manifest.csv); ``prompts.csv``
records each image's prompt, negative prompt and seed under the manifest's index.

On a GPU the pipeline runs in fp16 (or bf16, or fp32 when asked) with attention slicing;
on a CPU it runs in fp32, and the result says so when another precision was asked.
"""

from __future__ import annotations

import csv
from typing import Any

import numpy as np
import torch

from core.jobs.schemas import Txt2ImgJobIn
from core.model_versions import service as model_versions
from models.errors import Stopped
from worker import formats, pipelines
from worker.context import JobContext
from worker.formats import documents
from worker.formats.description import Description, evaluations_of, model_of
from worker.images import GridCollector
from worker.lineage import code_version
from worker.outcome import File, Outcome, stored
from worker.storage_io import download_prefix
from worker.versions import get_version

PROMPTS = "prompts.csv"
PRECISIONS = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}


def placement(asked: str) -> tuple[torch.device, str, str | None]:
    """(device, precision, why the precision differs from the one asked or None)."""
    if torch.cuda.is_available():
        return torch.device("cuda"), "fp16" if asked == "auto" else asked, None
    note = None
    if asked in ("fp16", "bf16"):
        note = f"this worker has no GPU: ran in fp32 on the CPU, not {asked}"
    return torch.device("cpu"), "fp32", note


def run(ctx: JobContext[Txt2ImgJobIn]) -> Outcome:
    request = ctx.request
    version = get_version(ctx, ctx.job.model_version_id)
    directory = ctx.workdir / "pipeline"
    ctx.progress.set_stage("load")
    download_prefix(ctx.storage, version.checkpoint_uri, directory)
    device, precision, note = placement(request.precision)
    pipe = pipelines.with_scheduler(
        pipelines.load(directory, dtype=PRECISIONS[precision]), request.scheduler
    ).to(device)
    sliced = device.type == "cuda" and request.attention_slicing
    if sliced:
        pipe.enable_attention_slicing()
    pipe.set_progress_bar_config(disable=True)
    default = version.spec.get("default_size") or [512, 512]
    height, width = request.height or int(default[0]), request.width or int(default[1])

    classes = list(request.prompts)
    plan = [
        (label, prompts[i % len(prompts)])
        for label, name in enumerate(classes)
        for prompts in [request.prompts_of(name)]
        for i in range(request.count_per_class)
    ]
    writer = formats.writer(
        request.output_format,
        formats.Target(
            ctx.storage,
            ctx.prefix,
            ctx.workdir,
            len(plan),
            (3, height, width),
            classes,
            model_version=version.id,
            shard_bytes=ctx.settings.output_shard_bytes,
            shard_samples=ctx.settings.output_shard_samples,
        ),
    )
    grid = GridCollector(len(classes))
    record_path = ctx.workdir / PROMPTS
    batches = -(-len(plan) // request.batch_size)
    total = batches * request.steps

    ctx.progress.set_stage("generate")
    with record_path.open("w", newline="") as record_file:
        record = csv.writer(record_file)
        record.writerow(["index", "label", "class_name", "prompt", "negative_prompt", "seed"])
        for batch, start in enumerate(range(0, len(plan), request.batch_size)):
            part = plan[start : start + request.batch_size]
            seeds = [request.seed + start + i for i in range(len(part))]
            images = _generate(
                ctx, pipe, request, part, seeds, (height, width), device, batch, total
            )
            labels = np.array([label for label, _ in part], dtype=np.int64)
            writer.add(images, labels, np.asarray(seeds, dtype=np.int64))
            grid.add(images, labels)
            for offset, ((label, prompt), seed) in enumerate(zip(part, seeds, strict=True)):
                record.writerow(
                    [
                        start + offset,
                        label,
                        classes[label],
                        prompt,
                        request.negative_prompt or "",
                        seed,
                    ]
                )
    files = stored(writer.finish())  # the shards went to storage as they were written
    files.append(File("grid.png", grid.png()))
    files.append(File(PROMPTS, record_path, "text/csv"))
    description = Description(
        job_id=ctx.job.id,
        kind="txt2img",
        created_at=ctx.job.created_at,
        output_format=request.output_format,
        location=writer.location,
        count=writer.count,
        image_shape=(3, height, width),
        class_names=classes,
        counts=writer.manifest.counts,
        files={f.name: f.size for f in files if not f.name.startswith("images/")},
        sha256=writer.sha256,
        sampling={
            **request.model_dump(
                include={"prompts", "templates", "negative_prompt", "steps", "guidance_scale"}
            ),
            "seed": f"{request.seed} + the image's index",
            "scheduler": type(pipe.scheduler).__name__,
            "precision": precision,
            "size": [height, width],
        },
        model=model_of(version),
        lineage=version.lineage,
        evaluations=evaluations_of(version.metrics),
        code_version=code_version(),
    )
    files += documents.files(description)
    ctx.progress.flush()
    return Outcome(
        result={
            "count": writer.count,
            "output_format": request.output_format,
            "images_at": writer.location,
            "manifest": formats.MANIFEST,
            "prompts": PROMPTS,
            "artifacts": len(files),
            "image_shape": [3, height, width],
            "class_names": classes,
            "model_version": model_versions.summary(version),
            "device": device.type,
            "precision": precision,
            "attention_slicing": sliced,
            "scheduler": type(pipe.scheduler).__name__,
            **({"note": note} if note else {}),
        },
        files=files,
    )


def _generate(
    ctx: JobContext[Txt2ImgJobIn],
    pipe: Any,
    request: Txt2ImgJobIn,
    part: list[tuple[int, str]],
    seeds: list[int],
    size: tuple[int, int],
    device: torch.device,
    batch: int,
    total: int,
) -> np.ndarray:
    """One forward batch: uint8 (b, 3, h, w)."""

    def on_step(_pipe: Any, step: int, _timestep: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        if ctx.should_stop():
            raise Stopped(f"txt2img stopped in batch {batch + 1}")
        ctx.progress(batch * request.steps + step + 1, total, images=batch * request.batch_size)
        return kwargs

    negative = [request.negative_prompt] * len(part) if request.negative_prompt else None
    with torch.inference_mode():
        out = pipe(
            prompt=[prompt for _, prompt in part],
            negative_prompt=negative,
            num_inference_steps=request.steps,
            guidance_scale=request.guidance_scale,
            height=size[0],
            width=size[1],
            generator=[torch.Generator(device=device).manual_seed(s) for s in seeds],
            output_type="np",
            callback_on_step_end=on_step,
        )
    pixels = np.clip(np.rint(np.asarray(out.images, dtype=np.float32) * 255), 0, 255)
    return np.ascontiguousarray(pixels.astype(np.uint8).transpose(0, 3, 1, 2))
