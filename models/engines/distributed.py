"""Data-parallel training over ``torch.distributed``: what an engine's step needs to run on
N processes (one per GPU) as it runs on one.

Every rank builds the same run from the same seed and steps the same :class:`DataOrder`,
so all ranks agree on the global batch of B indices and draw the same noise for all B
rows from the same generator; each then trains on its own B/N rows (:meth:`Shard.rows`)
and the gradients are averaged across ranks (:meth:`Shard.average_gradients`, one
all-reduce over all of a module's gradients) before the optimiser steps. The ranks' mean
of per-shard mean losses is the mean over the global batch, so N processes with B/N rows
each take the steps one process takes with B, up to the order of float additions; batch
norm statistics are taken over the global batch too (:class:`SyncBatchNorm`). Since
every rank holds identical weights, optimiser state, generator and data order, rank 0's
checkpoint restores every rank, and a run resumed with the same N ends bitwise as an
uninterrupted one.

An engine asks :func:`current` for its shard; with no process group (a notebook, a
one-GPU job) that is the whole batch and nothing here communicates. The process group
is set up by the launcher (``torchrun``; worker/launch.py) through :func:`init`.

    torchrun --nproc-per-node 2 my_script.py   # in it: distributed.init(); engine.train(...)
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from models.engines.base import EngineError


@dataclass(frozen=True)
class Shard:
    """This process's part of data-parallel training: rank ``rank`` of ``world_size``."""

    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that reports progress and writes checkpoints and the result."""
        return self.rank == 0

    def rows(self, batch_size: int) -> slice:
        """This rank's rows of a global batch of ``batch_size`` (contiguous, equal parts)."""
        if batch_size % self.world_size:
            raise EngineError(
                f"batch_size {batch_size} does not split evenly over {self.world_size} GPUs; "
                f"use a multiple of {self.world_size}"
            )
        part = batch_size // self.world_size
        return slice(self.rank * part, (self.rank + 1) * part)

    def average_gradients(self, *modules: nn.Module) -> None:
        """Replace each parameter's gradient by its mean over the ranks (in one
        all-reduce per dtype), as DistributedDataParallel would after ``backward``."""
        if self.world_size == 1:
            return
        grads = [p.grad for m in modules for p in m.parameters() if p.grad is not None]
        for dtype in sorted({g.dtype for g in grads}, key=str):
            same = [g for g in grads if g.dtype == dtype]
            flat = torch._utils._flatten_dense_tensors(same)
            dist.all_reduce(flat)
            flat.div_(self.world_size)
            for grad, synced in zip(
                same, torch._utils._unflatten_dense_tensors(flat, same), strict=True
            ):
                grad.copy_(synced)

    def agree(self, flag: bool, device: torch.device | str = "cpu") -> bool:
        """Rank 0's ``flag`` on every rank (e.g. "stop now"), so all ranks leave the loop
        at the same step instead of some waiting forever in the next all-reduce."""
        if self.world_size == 1:
            return flag
        value = torch.tensor([int(flag)], device=device)
        dist.broadcast(value, src=0)
        return bool(value.item())


def current() -> Shard:
    """The shard of this process: from the process group when one is set up, else the
    whole batch."""
    if not (dist.is_available() and dist.is_initialized()):
        return Shard()
    return Shard(rank=dist.get_rank(), world_size=dist.get_world_size())


def init(local_rank: int) -> Shard:
    """Join the process group ``torchrun`` describes in the environment (NCCL on GPUs,
    gloo on CPU); on a GPU host this rank uses GPU ``local_rank``."""
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        dist.init_process_group("nccl", device_id=torch.device("cuda", local_rank))
    else:
        dist.init_process_group("gloo")
    return current()


def shutdown(*, together: bool) -> None:
    """Leave the process group. ``together`` (every rank ended the same way: trained or
    stopped): wait for the others first, so no rank tears its connections down while a
    peer still uses them (gloo then aborts the late rank at exit). After an error the
    others may never arrive, so a failing rank leaves at once."""
    if dist.is_available() and dist.is_initialized():
        if together:
            dist.barrier()
        dist.destroy_process_group()


def device() -> torch.device:
    """Where collectives of this process group run (NCCL needs CUDA tensors)."""
    if dist.is_initialized() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


class _AllReduce(torch.autograd.Function):
    """Sum over the ranks, differentiable: the gradient of every rank's copy of the sum
    flows back to every rank's summand (the backward pass is the same all-reduce)."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor) -> torch.Tensor:
        total = x.clone()
        dist.all_reduce(total)
        return total

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> torch.Tensor:
        total = grad.clone()
        dist.all_reduce(total)
        return total


class SyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch norm whose training statistics are those of the global batch: mean and
    variance are all-reduced over the ranks (through the differentiable
    ``torch.distributed.nn`` all-reduce, so gradients flow to every rank's rows). Works on
    CPU (gloo) and GPU, unlike ``torch.nn.SyncBatchNorm``. Outside training, or without a
    process group, it is plain batch norm; its state dict is batch norm's."""

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2D input, got {x.dim()}D")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shard = current()
        if not self.training or shard.world_size == 1:
            return super().forward(x)
        # x: (b, c, ...); statistics per channel over the batch and spatial dims, in fp32.
        dims = [0, *range(2, x.dim())]
        shape = [1, -1] + [1] * (x.dim() - 2)
        xf = x.float()
        count = xf.numel() // xf.shape[1] * shard.world_size
        mean = _AllReduce.apply(xf.sum(dims)) / count
        centered = xf - mean.view(shape)
        var = _AllReduce.apply(centered.square().sum(dims)) / count
        if self.track_running_stats and self.running_mean is not None:
            self._update_running_stats(mean.detach(), var.detach(), count)
        out = centered * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out.to(x.dtype)

    @torch.no_grad()
    def _update_running_stats(self, mean: torch.Tensor, var: torch.Tensor, count: int) -> None:
        # As _BatchNorm: the unbiased variance, momentum or (None) a cumulative average.
        assert self.running_mean is not None and self.running_var is not None
        assert self.num_batches_tracked is not None
        self.num_batches_tracked.add_(1)
        factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        self.running_mean.lerp_(mean, factor)
        self.running_var.lerp_(var * count / max(count - 1, 1), factor)


def sync_batch_norm(module: nn.Module) -> nn.Module:
    """``module`` with every batch norm layer turned into :class:`SyncBatchNorm` (same
    parameters and buffers) when this process trains data-parallel; unchanged otherwise."""
    if current().world_size == 1:
        return module
    return _convert(module)


def _convert(module: nn.Module) -> nn.Module:
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(
        module, SyncBatchNorm
    ):
        converted = SyncBatchNorm(
            module.num_features, module.eps, module.momentum, module.affine,
            module.track_running_stats,
        )  # fmt: skip
        converted.load_state_dict(module.state_dict())
        where = next(itertools.chain(module.parameters(), module.buffers())).device
        return converted.to(where).train(module.training)
    for name, child in module.named_children():
        module.add_module(name, _convert(child))
    return module
