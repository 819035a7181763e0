"""What makes the engines fast: on a GPU, and where it pays on a CPU (torch only).

- :func:`compiled`: a module's forward through ``torch.compile`` on CUDA, and on CPU for
  a sampling run long enough to repay compiling (:data:`CPU_COMPILE_MIN_WORK`), falling
  back to eager (logged once, process-wide) when compiling fails, in the forward or the
  backward; ``SYNTHGEN_COMPILE`` = ``auto`` (the default), ``on`` or ``off``.
- :func:`sample_precision` / :func:`autocast`: sampling in bf16 autocast on CUDA, and on a
  CPU that computes bf16 natively (:func:`cpu_has_bf16`, detected: AVX-512 BF16 or AMX);
  fp32 elsewhere, or when the caller asks for ``"fp32"``.
- :func:`place_dataset` / :func:`gather`: a training set small enough lives on the GPU
  for the whole run, so a step reads its batch without a host-to-device copy; a larger
  one sits in pinned memory, from which :func:`gather` copies each batch asynchronously
  (plain ``images[index].to(device)`` works on either placement, synchronously).
- :func:`sample_batch_size`: the sampling batch the free GPU memory allows, for callers
  that name none (an explicit batch size is never changed).

Training on CPU stays fp32, contiguous and eager: bf16 autocast, channels_last and
compiling did not pay for the small UNets a CPU trains (BENCHMARKS.md, issue 28), and fp32
keeps CPU training runs bitwise reproducible.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import torch

from models.engine_options.sampling import PRECISIONS
from models.engines.base import EngineError

log = logging.getLogger(__name__)

COMPILE_ENV = "SYNTHGEN_COMPILE"
COMPILE_CHOICES = ("auto", "on", "off")
DATA_ON_DEVICE_FRACTION = 0.25
"""A dataset goes onto the GPU when it takes at most this share of the free memory."""
SAMPLE_MEMORY_FRACTION = 0.5
"""Sampling batches are sized to use at most this share of the free memory."""
SAMPLE_BATCH_CAP = 1024
CPU_SAMPLE_BATCH = 256
CPU_COMPILE_MIN_WORK = 100_000
"""Image-steps (images × denoising steps) a CPU sampling run must plan before it is
compiled. Compiling took 45 s (quiet) to 200-290 s (loaded) on the 2-core CPU and made
the bf16 forward 1.2× (28 px) to 1.9× (16 px, guided) faster (BENCHMARKS.md, issue 28):
from ~100,000 image-steps (~15 minutes of eager bf16 sampling at 16 px) it repays itself.
A 60,000-image generate job at the default 5 steps is 300,000; a preview is a few hundred."""

_failures: list[str] = []
"""Why compiling failed in this process, first failure first; once one failed, no module
is compiled again (a broken compiler stays broken, and each try can take minutes)."""
_wrappers: weakref.WeakKeyDictionary[torch.nn.Module, _Compiled] = weakref.WeakKeyDictionary()


# --------------------------------------------------------------------------- compile


def compile_enabled(device: torch.device, work: int | None = None) -> bool:
    """Whether :func:`compiled` compiles on ``device``: ``SYNTHGEN_COMPILE`` (auto: CUDA,
    and CPU for a sampling run of at least :data:`CPU_COMPILE_MIN_WORK` image-steps;
    ``work`` None, as training passes, stays eager on CPU)."""
    setting = os.environ.get(COMPILE_ENV, "auto").strip().lower() or "auto"
    if setting not in COMPILE_CHOICES:
        raise EngineError(f"{COMPILE_ENV} must be one of {list(COMPILE_CHOICES)}, got {setting!r}")
    if setting == "off" or _failures:
        return False
    if setting == "on" or device.type == "cuda":
        return True
    return work is not None and work >= CPU_COMPILE_MIN_WORK


def compile_failures() -> list[str]:
    """Why compiling fell back to eager in this process (empty when it never did)."""
    return list(_failures)


def compiled(
    module: torch.nn.Module, device: torch.device, work: int | None = None
) -> Callable[..., Any]:
    """``module``'s forward, compiled when :func:`compile_enabled` (``work``: the
    image-steps a sampling run plans), else ``module`` itself.

    The same module gets the same wrapper back, so repeated calls (one per ``sample``)
    reuse one compilation. Parameters stay ``module``'s: train it, save its state_dict.
    """
    if not compile_enabled(device, work):
        return module
    wrapper = _wrappers.get(module)
    if wrapper is None:
        wrapper = _wrappers[module] = _Compiled(module)
    return wrapper


class _Compiled:
    """Calls the compiled forward; on an exception from the compiler (or anything the
    compiled code raises) records it, logs it once and calls the eager module instead.

    The backward is compiled lazily, at the first ``backward()``, out of reach of this
    wrapper: so the first call that records a graph runs once more as a trial, forward and
    backward (``autograd.grad``, which leaves ``.grad`` untouched), where a failure can
    still fall back. The trial costs one step's compute once; the networks here draw no
    random numbers in their forward, so it changes nothing else. (A graph kept for a second
    backward would not do: compiled backwards donate their buffers and refuse it.)
    """

    def __init__(self, module: torch.nn.Module) -> None:
        self.module = module
        self._compiled: Callable[..., Any] | None = None
        self._backward_checked = False
        try:
            # Static shapes: a sampling run has one or two batch shapes, each compiled once.
            self._compiled = torch.compile(module, dynamic=False)
        except Exception as error:  # noqa: BLE001 - any failure means: run eagerly
            _fall_back(module, error)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._compiled is None or _failures:
            return self.module(*args, **kwargs)
        try:
            if not self._backward_checked and torch.is_grad_enabled():
                _trial_backward(self._compiled(*args, **kwargs), self.module.parameters())
                self._backward_checked = True
            out = self._compiled(*args, **kwargs)
        except Exception as error:  # noqa: BLE001 - compiler errors come in many types
            # Eager first: when it raises too, the inputs were at fault, not the compiler,
            # and its error is the one to report.
            out = self.module(*args, **kwargs)
            _fall_back(self.module, error)
            self._compiled = None
        return out


def _trial_backward(out: Any, parameters: Any) -> None:
    first = out[0] if isinstance(out, tuple | list) else getattr(out, "sample", out)
    if isinstance(first, torch.Tensor) and first.requires_grad:
        trainable = [p for p in parameters if p.requires_grad][:1]
        if trainable:
            torch.autograd.grad(first.sum(), trainable, allow_unused=True)


def _fall_back(module: torch.nn.Module, error: BaseException) -> None:
    reason = f"{type(error).__name__}: {error}"
    if not _failures:
        log.warning(
            "torch.compile of %s failed; running eagerly from now on (set %s=off to skip "
            "compiling): %s",
            type(module).__name__,
            COMPILE_ENV,
            reason,
        )
    _failures.append(reason)


# --------------------------------------------------------------------------- precision


@functools.cache
def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX-512 BF16 or AMX tiles), as torch's
    own checks say, else the ``avx512_bf16``/``amx_bf16`` flags of /proc/cpuinfo. Without
    them oneDNN emulates bf16, slower than fp32, so the answer is fp32."""
    if not torch.backends.mkldnn.is_available():
        return False
    checks = [getattr(torch.cpu, name, None) for name in _TORCH_BF16_CHECKS]
    if any(check is not None for check in checks):
        return any(bool(check()) for check in checks if check is not None)
    return bool(_cpuinfo_flags() & {"avx512_bf16", "amx_bf16"})


_TORCH_BF16_CHECKS = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")


def _cpuinfo_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    return {flag for line in text.splitlines() if line.startswith("flags") for flag in line.split()}


def sample_precision(device: torch.device, precision: str = "auto") -> torch.dtype | None:
    """The autocast dtype of a sampling run, None for fp32: ``precision`` "auto" is bf16 on
    CUDA and on a CPU where :func:`cpu_has_bf16`, "fp32" is fp32 everywhere."""
    if precision not in PRECISIONS:
        raise EngineError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}")
    if precision == "fp32":
        return None
    if device.type == "cuda" or (device.type == "cpu" and cpu_has_bf16()):
        return torch.bfloat16
    return None


def autocast(
    device: torch.device, dtype: torch.dtype | None
) -> contextlib.AbstractContextManager[Any]:
    """Autocast to ``dtype`` on ``device``; a no-op for None (fp32)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


# --------------------------------------------------------------------------- data


Placement = Literal["device", "pinned", "cpu"]


def dataset_placement(nbytes: int, device_type: str, free_bytes: int | None) -> Placement:
    """Where a training set of ``nbytes`` should live: on the GPU when it takes at most
    :data:`DATA_ON_DEVICE_FRACTION` of ``free_bytes``, else in pinned host memory; on
    CPU where it is."""
    if device_type != "cuda":
        return "cpu"
    if free_bytes is not None and nbytes <= DATA_ON_DEVICE_FRACTION * free_bytes:
        return "device"
    return "pinned"


def place_dataset(tensors: Sequence[torch.Tensor], device: torch.device) -> list[torch.Tensor]:
    """``tensors`` (the images and labels of one training set) moved where
    :func:`dataset_placement` says, all to the same place."""
    free = torch.cuda.mem_get_info(device)[0] if device.type == "cuda" else None
    placement = dataset_placement(sum(t.nbytes for t in tensors), device.type, free)
    if placement == "device":
        return [t.to(device) for t in tensors]
    if placement == "pinned":
        return [t.pin_memory() for t in tensors]
    return list(tensors)


def gather(tensor: torch.Tensor, index: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``tensor[index]`` on ``device``; ``index`` int64 (b,) on CPU. Pinned rows are
    gathered into pinned memory so the copy overlaps the GPU's work."""
    if tensor.device.type == "cuda":
        return tensor[index.to(tensor.device, non_blocking=True)]
    if device.type == "cuda" and tensor.is_pinned():
        rows = torch.empty((len(index), *tensor.shape[1:]), dtype=tensor.dtype, pin_memory=True)
        torch.index_select(tensor, 0, index, out=rows)
        return rows.to(device, non_blocking=True)
    return tensor[index].to(device)


# --------------------------------------------------------------------------- sampling


def batch_for_memory(free_bytes: int, per_image_bytes: int) -> int:
    """The largest power of two b <= :data:`SAMPLE_BATCH_CAP` with b images' estimated
    memory within :data:`SAMPLE_MEMORY_FRACTION` of ``free_bytes``; at least 1."""
    fit = int(SAMPLE_MEMORY_FRACTION * free_bytes) // max(per_image_bytes, 1)
    batch = 1
    while batch * 2 <= min(fit, SAMPLE_BATCH_CAP):
        batch *= 2
    return batch


def sample_batch_size(device: torch.device, per_image_bytes: int) -> int:
    """The batch for a caller that named none: :data:`CPU_SAMPLE_BATCH` on CPU, else
    :func:`batch_for_memory` of the device's free memory now."""
    if device.type != "cuda":
        return CPU_SAMPLE_BATCH
    return batch_for_memory(torch.cuda.mem_get_info(device)[0], per_image_bytes)


def unet_bytes_per_image(widths: Sequence[int], layers_per_block: int, image_size: int) -> int:
    """A generous estimate of one image's activation memory in a UNet forward without
    gradients: the skip tensors the down path keeps for the up path (layers_per_block + 1
    per level, ``widths[i]`` channels at ``image_size / 2**i``), plus the working tensors
    of the top level (~8 of twice its width), in float32, doubled for the allocator's
    slack and the convolutions' workspaces."""
    elements = sum(
        (layers_per_block + 1) * width * (image_size >> level) ** 2
        for level, width in enumerate(widths)
    )
    elements += 8 * 2 * widths[0] * image_size**2
    return 2 * 4 * elements
