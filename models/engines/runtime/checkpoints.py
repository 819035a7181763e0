"""Resumable training states as safetensors + JSON (never pickle).

An engine's checkpoint is one nested state dict::

    state = {"model": model.state_dict(), "ema": ema.state_dict(),
             "optimizer": opt.state_dict(), "rng": rng.rng_state(),
             "data": order.state_dict(), "budget": budget.state_dict(), "step": step}
    save_state(directory, state)            # checkpoint.safetensors + checkpoint.json
    state = load_state(directory)           # the same nested structure back

A CPU run interrupted at a checkpoint and resumed from it ends bitwise-identical to an
uninterrupted one, provided the engine restores every piece above before its next step
(:mod:`.run` and :mod:`.resume` do this for the pieces every engine shares).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from models.engines.base import EngineError

CHECKPOINT_WEIGHTS = "checkpoint.safetensors"
CHECKPOINT_META = "checkpoint.json"


def flatten_state(state: Mapping[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split a nested state (dicts, lists, tuples, tensors, numbers, strings) into a flat
    ``{path: tensor}`` dict for safetensors and a JSON-able skeleton that points at it.

    Works for ``optimizer.state_dict()`` (int keys, tuples like Adam's betas), module
    state dicts, :func:`rng_state` and the ``state_dict`` of the classes above.
    """
    tensors: dict[str, torch.Tensor] = {}
    seen: set[int] = set()

    def encode(value: Any, path: str) -> Any:
        if isinstance(value, torch.Tensor):
            if path in tensors:
                raise ValueError(f"two entries flatten to the same key {path!r}")
            tensor = value.detach().to("cpu").contiguous()
            # safetensors refuses tensors that share storage (tied weights): copy those.
            storage = tensor.untyped_storage().data_ptr()
            if tensor.numel() and storage in seen:
                tensor = tensor.clone()
            seen.add(storage)
            tensors[path] = tensor
            return {"__tensor__": path}
        if isinstance(value, Mapping):
            if all(isinstance(k, str) and not k.startswith("__") for k in value):
                return {k: encode(v, f"{path}/{k}") for k, v in value.items()}
            return {"__items__": [[k, encode(v, f"{path}/{k}")] for k, v in value.items()]}
        if isinstance(value, tuple):
            return {"__tuple__": [encode(v, f"{path}/{i}") for i, v in enumerate(value)]}
        if isinstance(value, list):
            return [encode(v, f"{path}/{i}") for i, v in enumerate(value)]
        if value is None or isinstance(value, bool | int | float | str):
            return value
        raise TypeError(f"cannot checkpoint {type(value).__name__} at {path!r}")

    skeleton = {k: encode(v, k) for k, v in state.items()}
    return tensors, skeleton


def unflatten_state(
    tensors: Mapping[str, torch.Tensor], skeleton: Mapping[str, Any]
) -> dict[str, Any]:
    """Inverse of :func:`flatten_state`."""

    def decode(value: Any) -> Any:
        if isinstance(value, dict):
            if "__tensor__" in value:
                return tensors[value["__tensor__"]]
            if "__tuple__" in value:
                return tuple(decode(v) for v in value["__tuple__"])
            if "__items__" in value:
                return {k: decode(v) for k, v in value["__items__"]}
            return {k: decode(v) for k, v in value.items()}
        if isinstance(value, list):
            return [decode(v) for v in value]
        return value

    return {k: decode(v) for k, v in skeleton.items()}


def save_checkpoint(
    directory: Path, tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any]
) -> list[Path]:
    """Write ``checkpoint.safetensors`` and ``checkpoint.json`` into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    weights, meta_path = directory / CHECKPOINT_WEIGHTS, directory / CHECKPOINT_META
    save_file(dict(tensors), str(weights))
    meta_path.write_text(json.dumps(meta, indent=1))
    return [weights, meta_path]


def load_checkpoint(directory: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read what :func:`save_checkpoint` wrote (no pickle involved)."""
    directory = Path(directory)
    weights, meta_path = directory / CHECKPOINT_WEIGHTS, directory / CHECKPOINT_META
    if not weights.is_file() or not meta_path.is_file():
        raise EngineError(
            f"{directory} is not a checkpoint: expected {CHECKPOINT_WEIGHTS} and {CHECKPOINT_META}"
        )
    return load_file(str(weights)), json.loads(meta_path.read_text())


def save_state(directory: Path, state: Mapping[str, Any]) -> list[Path]:
    """Flatten a nested training state and write it as a checkpoint."""
    return save_checkpoint(directory, *flatten_state(state))


def load_state(directory: Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_state` back into its nested form."""
    return unflatten_state(*load_checkpoint(directory))
