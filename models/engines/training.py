"""Training utilities shared by every engine (torch only).

What lives here is what makes a run *resumable* and *reproducible*: seeding, the data
order, the step budget, RNG snapshots, EMA weights and safetensors + JSON checkpoints
(never pickle). An engine's checkpoint is one nested state dict::

    state = {"model": model.state_dict(), "ema": ema.state_dict(),
             "optimizer": opt.state_dict(), "rng": rng_state(),
             "data": order.state_dict(), "budget": budget.state_dict(), "step": step}
    save_state(directory, state)            # checkpoint.safetensors + checkpoint.json
    state = load_state(directory)           # the same nested structure back

A CPU run interrupted at a checkpoint and resumed from it ends bitwise-identical to an
uninterrupted one, provided the engine restores every piece above before its next step.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import math
import random
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pydantic
import torch
from safetensors.torch import load_file, save_file

from models.engines.base import FORMAT_VERSION, EngineError, Trained, TrainingDiverged

CHECKPOINT_WEIGHTS = "checkpoint.safetensors"
CHECKPOINT_META = "checkpoint.json"
MODEL_WEIGHTS = "model.safetensors"
MODEL_CONFIG = "config.json"


# --------------------------------------------------------------------------- config

ConfigT = TypeVar("ConfigT")


def make_config(cls: type[ConfigT], values: Mapping[str, Any], *, engine: str) -> ConfigT:
    """Build the options class ``cls`` (:mod:`models.engine_options`) from ``values``.

    The class checks types and bounds exactly as the API does at submit; a refusal becomes
    an :class:`EngineError` naming the key, and an unknown key lists the valid ones.
    """
    valid = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    for key in values:
        if key not in valid:
            raise EngineError(f"unknown {engine} config key {key!r}; valid keys are {valid}")
    return checked(cls, engine, **values)


def checked(cls: Callable[..., ConfigT], engine: str, **values: Any) -> ConfigT:
    """``cls(**values)`` with a refusal said as an :class:`EngineError` naming the key."""
    try:
        return cls(**values)
    except pydantic.ValidationError as exc:
        raise EngineError(f"{engine} config {config_error(exc)}") from None


def config_error(exc: pydantic.ValidationError) -> str:
    """The first error as "'key': reason" (a rule between keys has no key)."""
    error = exc.errors()[0]
    reason = str(error["msg"]).removeprefix("Value error, ")
    key = ".".join(str(part) for part in error["loc"])
    return f"{key!r}: {reason}" if key else reason


# --------------------------------------------------------------------------- devices


def pick_device(prefer: str | torch.device | None = None) -> torch.device:
    """CUDA when available, else CPU; ``prefer`` ("cpu", "cuda", "cuda:1") overrides."""
    if prefer is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(prefer)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise EngineError(f"device {str(device)!r} requested but CUDA is not available; use 'cpu'")
    if device.type not in ("cuda", "cpu"):
        raise EngineError(f"device {str(device)!r} is not supported; use 'cpu' or 'cuda'")
    return device


def autocast(device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast on CUDA; a no-op on CPU, where fp32 keeps runs exact and reproducible."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


ModuleOrTensor = TypeVar("ModuleOrTensor", torch.nn.Module, torch.Tensor)


def channels_last(x: ModuleOrTensor, device: torch.device) -> ModuleOrTensor:
    """Convert a conv net or an image batch to channels_last on CUDA (tensor cores want
    NHWC); on CPU return it unchanged so weights and results stay bitwise reproducible."""
    if device.type != "cuda":
        return x
    return x.to(memory_format=torch.channels_last)


# --------------------------------------------------------------------------- pixels


def to_unit_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 (n, c, h, w) in [0, 255] -> float32 (n, c, h, w) in [-1, 1]."""
    return images.to(torch.float32).div_(127.5).sub_(1.0)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """float (n, c, h, w) in [-1, 1] (clipped) -> uint8 (n, c, h, w) in [0, 255], on CPU."""
    return ((x.float().clamp(-1.0, 1.0) + 1.0) * 127.5).round_().to(torch.uint8).cpu()


# --------------------------------------------------------------------------- randomness


def seed_everything(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """Seed python, numpy and torch (CPU and CUDA); return a generator on ``device``
    seeded with ``seed``.

    Engines draw their own noise from the returned generator so that sampling and
    training do not depend on whatever else touched the global RNGs.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator(device=device).manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """Snapshot of the global RNGs (torch CPU + CUDA, python ``random``, numpy)."""
    py_version, py_words, py_gauss = random.getstate()
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state(legacy=True)
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": [py_version, list(py_words), py_gauss],
        "numpy": {
            "kind": np_kind,
            "keys": torch.from_numpy(np_keys.astype(np.int64)),
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "gauss": float(np_gauss),
        },
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore a snapshot taken by :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    version, words, gauss = state["python"]
    random.setstate((version, tuple(words), gauss))
    numpy_state = state["numpy"]
    np.random.set_state(
        (
            numpy_state["kind"],
            numpy_state["keys"].numpy().astype(np.uint32),
            numpy_state["pos"],
            numpy_state["has_gauss"],
            numpy_state["gauss"],
        )
    )
    # A checkpoint from a GPU box resumed on CPU (or vice versa) keeps what applies.
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(state["cuda"]))


class DataOrder:
    """Seeded, resumable minibatch order: a fresh permutation per epoch.

    Epoch ``e`` shuffles with its own generator seeded from ``(seed, e)``, so the order
    is a pure function of ``(seed, epoch, position)`` and a resumed run draws exactly the
    batches an uninterrupted one would. A batch that runs past the end of an epoch
    continues into the next one, so a dataset smaller than a batch still works.
    """

    def __init__(self, n: int, batch_size: int, seed: int) -> None:
        if n <= 0:
            raise EngineError("the dataset is empty; give it at least one image")
        if batch_size <= 0:
            raise EngineError(f"batch_size must be positive, got {batch_size}")
        self.n = n
        self.batch_size = batch_size
        self.seed = seed
        self.epoch = 0
        self.position = 0
        self._perm = self._permutation(0)

    def _permutation(self, epoch: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed((self.seed * 1_000_003 + epoch) % 2**63)
        return torch.randperm(self.n, generator=generator)

    def next_indices(self) -> torch.Tensor:
        """int64 (batch_size,): the dataset indices of the next minibatch."""
        parts = []
        needed = self.batch_size
        while needed > 0:
            take = min(needed, self.n - self.position)
            parts.append(self._perm[self.position : self.position + take])
            self.position += take
            needed -= take
            if self.position == self.n:
                self.epoch += 1
                self.position = 0
                self._perm = self._permutation(self.epoch)
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position, "seed": self.seed}

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        self.seed = int(state["seed"])
        self.epoch = int(state["epoch"])
        self.position = int(state["position"])
        self._perm = self._permutation(self.epoch)


# --------------------------------------------------------------------------- budget


class Budget:
    """Stop after ``max_steps`` steps or ``max_seconds`` of training, whichever is first.

    Steps are the unit of record: ``total`` (for progress bars) is ``max_steps`` and the
    time limit only ever cuts a run short. Seconds already spent are carried through
    checkpoints, so a resumed run gets the remainder of its time, not a fresh allowance.
    """

    def __init__(self, max_steps: int, max_seconds: float | None = None) -> None:
        if max_steps <= 0:
            raise EngineError(f"max_steps must be positive, got {max_steps}")
        if max_seconds is not None and max_seconds <= 0:
            raise EngineError(f"max_seconds must be positive or null, got {max_seconds}")
        self.max_steps = max_steps
        self.max_seconds = max_seconds
        self._spent_before = 0.0
        self._started = time.monotonic()

    @property
    def total(self) -> int:
        return self.max_steps

    @property
    def elapsed(self) -> float:
        """Seconds of training so far, including those before a resume."""
        return self._spent_before + (time.monotonic() - self._started)

    def exhausted(self, step: int) -> bool:
        """True when ``step`` steps are done or the time is up."""
        if step >= self.max_steps:
            return True
        return self.max_seconds is not None and self.elapsed >= self.max_seconds

    def state_dict(self) -> dict[str, float]:
        return {"elapsed": self.elapsed}

    def load_state_dict(self, state: Mapping[str, float]) -> None:
        self._spent_before = float(state["elapsed"])
        self._started = time.monotonic()


# --------------------------------------------------------------------------- EMA


class EMA:
    """Exponential moving average of a module's weights (Polyak averaging).

    ``decay`` is warmed up as ``min(decay, (1 + k) / (10 + k))`` after ``k`` updates,
    so a short run is not dominated by its random initialisation.
    ``averaged`` is a frozen copy of the module holding the averaged weights.
    """

    def __init__(self, model: torch.nn.Module, decay: float = 0.999) -> None:
        if not 0.0 <= decay < 1.0:
            raise EngineError(f"ema_decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.num_updates = 0
        self.averaged = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.num_updates += 1
        decay = min(self.decay, (1 + self.num_updates) / (10 + self.num_updates))
        ema_params = list(self.averaged.parameters())
        params = [p.detach() for p in model.parameters()]
        torch._foreach_lerp_(ema_params, params, 1.0 - decay)
        for ema_buffer, buffer in zip(self.averaged.buffers(), model.buffers(), strict=True):
            ema_buffer.copy_(buffer)

    def copy_to(self, model: torch.nn.Module) -> None:
        """Load the averaged weights into ``model`` (same architecture)."""
        model.load_state_dict(self.averaged.state_dict())

    def state_dict(self) -> dict[str, Any]:
        return {"averaged": self.averaged.state_dict(), "num_updates": self.num_updates}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.averaged.load_state_dict(state["averaged"])
        self.num_updates = int(state["num_updates"])


def grad_norm(module: torch.nn.Module) -> torch.Tensor:
    """The L2 norm of all of ``module``'s gradients (what clip_grad_norm_ would clip)."""
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.nn.utils.get_total_norm(grads)


# --------------------------------------------------------------------------- divergence


def check_finite(
    name: str, value: torch.Tensor | float, hint: str, *, step: int | None = None
) -> None:
    """Raise :class:`TrainingDiverged` when ``value`` is NaN or infinite.

    ``hint`` tells the user what to change, e.g. "lower lr (now 0.1)".
    """
    number = float(value.detach()) if isinstance(value, torch.Tensor) else float(value)
    if math.isfinite(number):
        return
    where = f" at step {step}" if step is not None else ""
    raise TrainingDiverged(f"training diverged: {name} became {number}{where}; {hint}")


# --------------------------------------------------------------------------- checkpoints


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


def save_trained(trained: Trained, directory: Path) -> list[Path]:
    """Write a trained model as ``model.safetensors`` + ``config.json``.

    Weights are keyed ``"{module}.{parameter}"`` over ``trained.modules``; the JSON says
    what the weights are (engine, format version, config, classes, image shape, metrics)
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


def iter_batches(n: int, batch_size: int) -> Iterator[slice]:
    """Slices covering ``range(n)`` in chunks of at most ``batch_size``."""
    for start in range(0, n, batch_size):
        yield slice(start, min(n, start + batch_size))
