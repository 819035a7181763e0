"""Trained models as ``model.safetensors`` + ``config.json`` (never pickle): writing,
reading, and rebuilding a frozen network for sampling."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors.torch import load_file, save_file

from models.engines.base import FORMAT_VERSION, EngineError, Trained
from models.engines.runtime import devices

MODEL_WEIGHTS = "model.safetensors"
MODEL_CONFIG = "config.json"

ConfigT = TypeVar("ConfigT")


def save_trained(trained: Trained, directory: Path) -> list[Path]:
    """Write a trained model as ``model.safetensors`` + ``config.json``.

    Weights are keyed ``"{module}.{parameter}"`` over ``trained.modules``; the JSON says
    what the weights are (engine, format version, config, classes, image shape, metrics,
    privacy)
    so :func:`read_trained` can rebuild the modules without unpickling anything.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {
        f"{module_name}.{key}": value.detach().to("cpu").contiguous()
        for module_name, module in trained.modules.items()
        for key, value in module.state_dict().items()
    }
    weights, config = directory / MODEL_WEIGHTS, directory / MODEL_CONFIG
    save_file(tensors, str(weights), metadata={"engine": trained.engine})
    description = {
        "engine": trained.engine,
        "format_version": FORMAT_VERSION,
        "config": trained.config,
        "num_classes": trained.num_classes,
        "class_names": trained.class_names,
        "image_shape": list(trained.image_shape),
        "metrics": trained.metrics,
        "privacy": trained.privacy,
    }
    config.write_text(json.dumps(description, indent=1))
    return [weights, config]


def read_trained(
    directory: Path, engine: str
) -> tuple[dict[str, Any], dict[str, dict[str, torch.Tensor]]]:
    """Read what :func:`save_trained` wrote: (the ``config.json`` dict, per-module state
    dicts). Raises :class:`EngineError` for another engine's files or a newer format."""
    directory = Path(directory)
    weights, config = directory / MODEL_WEIGHTS, directory / MODEL_CONFIG
    if not weights.is_file() or not config.is_file():
        raise EngineError(
            f"{directory} holds no saved model: expected {MODEL_WEIGHTS} and {MODEL_CONFIG}"
        )
    description = json.loads(config.read_text())
    if description.get("engine") != engine:
        raise EngineError(
            f"{directory} holds a {description.get('engine')!r} model, not a {engine!r} one; "
            "load it with its own engine"
        )
    if description.get("format_version", 0) > FORMAT_VERSION:
        raise EngineError(
            f"{directory} was written in format {description['format_version']}, newer than this "
            f"synthgen reads ({FORMAT_VERSION}); upgrade synthgen to load it"
        )
    states: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in load_file(str(weights)).items():
        module_name, _, parameter = key.partition(".")
        states.setdefault(module_name, {})[parameter] = value
    return description, states


def load_trained(
    directory: Path,
    engine: str,
    *,
    read_config: Callable[[Mapping[str, Any]], ConfigT],
    build: Callable[[ConfigT, int, int], torch.nn.Module],
    module: str,
    optional: Mapping[str, Callable[[ConfigT, int, int], torch.nn.Module]] | None = None,
) -> Trained:
    """Rebuild what ``save_trained`` wrote, on CUDA when available, frozen for
    sampling; no pickle involved.

    read_config: the saved config dict -> the engine's resolved config dataclass.
    build: (config, channels, num_classes) -> the untrained network saved as ``module``.
    optional: other saved networks to rebuild (name -> build, as ``build``) when the files
        hold them: a gan's discriminator, which its membership attack reads.
    """
    description, states = read_trained(directory, engine)
    config = read_config(description["config"])
    channels, height, width = (int(v) for v in description["image_shape"])
    num_classes = int(description["num_classes"])
    builders = {module: build, **{k: v for k, v in (optional or {}).items() if k in states}}
    device = devices.pick_device()
    modules = {}
    for name, build_one in builders.items():
        net = build_one(config, channels, num_classes)
        net.load_state_dict(states[name])
        modules[name] = devices.channels_last(net.to(device), device).eval().requires_grad_(False)
    return Trained(
        engine=engine,
        config=dataclasses.asdict(config),  # type: ignore[call-overload]
        num_classes=num_classes,
        image_shape=(channels, height, width),
        class_names=list(description["class_names"]),
        modules=modules,
        metrics=dict(description["metrics"]),
        privacy=description.get("privacy"),  # absent in models saved before privacy
    )
