"""Imported diffusers text-to-image pipelines: checked before they are registered, loaded
for txt2img jobs.

A pipeline is a directory as ``save_pretrained`` wrote it: ``model_index.json`` naming
the pipeline class and its components, a folder per component. What is accepted:

- the pipeline class is a diffusers text-to-image pipeline (the ones
  ``AutoPipelineForText2Image`` maps to; ControlNet and Kontext pipelines need an input
  image and are refused);
- every component comes from diffusers or transformers (model_index.json names modules
  to import: nothing else is imported);
- weights are safetensors only: pickled weights (.bin, .pt, .ckpt, ...) and code (.py)
  are refused, because loading or running them would run the uploader's code;
- the pipeline loads (``from_pretrained`` on the files alone, no hub).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from core.errors import SynthgenError
from errors import UserError

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
COMPONENT_LIBRARIES = frozenset({"diffusers", "transformers"})
NEEDS_AN_IMAGE = ("ControlNet", "Control", "Kontext")
SCHEDULER_CLASSES = {
    "ddim": "DDIMScheduler",
    "ddpm": "DDPMScheduler",
    "pndm": "PNDMScheduler",
    "lms": "LMSDiscreteScheduler",
    "euler": "EulerDiscreteScheduler",
    "euler_ancestral": "EulerAncestralDiscreteScheduler",
    "dpm_solver_multistep": "DPMSolverMultistepScheduler",
    "unipc": "UniPCMultistepScheduler",
}
"""The ``scheduler`` names a txt2img job may ask for → diffusers scheduler classes."""


class BadModel(SynthgenError, UserError):
    """The files are not a model of the declared format; the message says what is wrong."""

    status_hint = 422
    title = "Model refused"


def text_to_image_classes() -> dict[str, type]:
    from diffusers.pipelines.auto_pipeline import AUTO_TEXT2IMAGE_PIPELINES_MAPPING

    return {
        cls.__name__: cls
        for cls in AUTO_TEXT2IMAGE_PIPELINES_MAPPING.values()
        if not any(word in cls.__name__ for word in NEEDS_AN_IMAGE)
    }


def check_files(directory: Path) -> dict[str, Any]:
    """The parsed model_index.json, after the checks that need no loading."""
    index_path = directory / "model_index.json"
    if not index_path.is_file():
        raise BadModel(
            "no model_index.json at the top of the upload: a diffusers pipeline is the "
            "directory save_pretrained wrote (archive that directory, or its contents)"
        )
    for path in sorted(directory.rglob("*")):
        relative = path.relative_to(directory).as_posix()
        if path.suffix.lower() in PICKLE_SUFFIXES:
            raise BadModel(
                f"{relative} holds pickled weights, which synthgen never loads; save the "
                "pipeline with save_pretrained(..., safe_serialization=True) (safetensors)"
            )
        if path.suffix.lower() == ".py":
            raise BadModel(f"{relative} is code; a model's own code is never run, leave it out")
    try:
        index = json.loads(index_path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadModel(f"model_index.json is not JSON: {exc}") from None
    if not isinstance(index, dict) or not isinstance(index.get("_class_name"), str):
        raise BadModel("model_index.json names no pipeline class (_class_name)")
    allowed = text_to_image_classes()
    if index["_class_name"] not in allowed:
        raise BadModel(
            f"{index['_class_name']} is not a diffusers text-to-image pipeline; txt2img "
            f"takes one of: {', '.join(sorted(allowed))}"
        )
    for name, value in index.items():
        if name.startswith("_") or not isinstance(value, list) or len(value) != 2:
            continue
        library, class_name = value
        if library is None:
            continue
        if library not in COMPONENT_LIBRARIES:
            raise BadModel(
                f"component {name} comes from {library!r}; only diffusers and transformers "
                "components are loaded"
            )
        if not (directory / name).is_dir():
            raise BadModel(
                f"model_index.json lists component {name} ({class_name}) but there is "
                f"no {name}/ folder"
            )
    return index


def load(directory: Path, *, dtype: torch.dtype = torch.float32) -> Any:
    """The pipeline in ``directory``, from its files alone (no hub), safetensors only."""
    from diffusers import DiffusionPipeline

    try:
        return DiffusionPipeline.from_pretrained(
            directory, torch_dtype=dtype, use_safetensors=True, local_files_only=True
        )
    except Exception as exc:  # noqa: BLE001 - any loading failure means a bad upload
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BadModel(f"the pipeline does not load: {message}") from None


def validate(directory: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(config, spec) of the pipeline in ``directory``, or BadModel. Loads it once."""
    index = check_files(directory)
    pipe = load(directory)
    if not any(isinstance(pipe, cls) for cls in text_to_image_classes().values()):
        raise BadModel(f"{type(pipe).__name__} is not a text-to-image pipeline")
    factor = int(getattr(pipe, "vae_scale_factor", 8))
    denoiser = getattr(pipe, "unet", None) or getattr(pipe, "transformer", None)
    sample = getattr(pipe, "default_sample_size", None) or getattr(
        getattr(denoiser, "config", None), "sample_size", None
    )
    side = (
        int(sample[0] if isinstance(sample, list | tuple) else sample) * factor if sample else None
    )
    components = {
        name: type(module).__name__
        for name, module in pipe.components.items()
        if module is not None
    }
    parameters: int = sum(
        p.numel()
        for module in pipe.components.values()
        if isinstance(module, torch.nn.Module)
        for p in module.parameters()
    )
    spec = {
        "task": "text-to-image",
        "pipeline_class": index["_class_name"],
        "components": components,
        "scheduler": type(pipe.scheduler).__name__,
        "vae_scale_factor": factor,
        "default_size": [side, side] if side else None,
        "parameters": int(parameters),
        "num_classes": 0,
        "conditional": False,
    }
    config = {"diffusers_version": index.get("_diffusers_version"), "model_index": index}
    return config, spec


def with_scheduler(pipe: Any, name: str | None) -> Any:
    """The pipeline with the named scheduler (its own when None), built from the
    pipeline's scheduler config so the noise schedule it was trained with is kept."""
    if name is None:
        return pipe
    import diffusers

    scheduler_class = getattr(diffusers, SCHEDULER_CLASSES[name])
    pipe.scheduler = scheduler_class.from_config(pipe.scheduler.config)
    return pipe
