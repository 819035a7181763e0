"""Data-parallel training (models/engines/distributed.py) on CPU: two gloo processes with
half the batch each take the steps one process takes with the whole batch."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.multiprocessing as mp
import torch.nn.functional as F  # noqa: N812 - the conventional alias
from safetensors.torch import load_file, save_file

from core.catalog import DATA_PARALLEL_ENGINES
from core.jobs.admission import DEFAULT_BATCH_MULTIPLE
from models import datasets, engines
from models.engines import ddpm, distributed, nets
from models.engines.base import EngineError, Hooks

DDPM = {"max_steps": 3, "batch_size": 8, "base_channels": 16, "layers_per_block": 1,
        "warmup_steps": 0, "lr": 1e-3, "seed": 0, "checkpoint_every": 0}  # fmt: skip
GAN = {"max_steps": 3, "batch_size": 8, "width": 4, "z_dim": 8, "seed": 0, "checkpoint_every": 0}


def _data() -> datasets.ImageDataset:
    return datasets.load("shapes", image_size=8, count=64)


def _weights(engine: str, config: dict[str, Any], hooks: Hooks | None = None) -> dict:
    trained = engines.get(engine).train(_data(), config, hooks)
    return {
        f"{name}.{key}": value.detach().clone()
        for name, module in trained.modules.items()
        for key, value in module.state_dict().items()
    }


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _rank(rank: int, world: int, port: int, job: str, engine: str, config: dict, out: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
        WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
    )  # fmt: skip
    torch.set_num_threads(1)
    shard = distributed.init(rank)
    saved = False
    try:
        if job == "train":
            weights = _weights(engine, config)
        else:  # "resume": checkpoint at step 2 of 4, then resume from it
            kept = Path(out) / "checkpoint"

            def keep(step: int, directory: Path) -> None:
                if step == 2 and shard.is_main:
                    shutil.copytree(directory, kept)

            full = _weights(engine, {**config, "max_steps": 4, "checkpoint_every": 2},
                            Hooks(checkpoint=keep))  # fmt: skip
            torch.distributed.barrier()
            resumed = _weights(engine, {**config, "max_steps": 4, "checkpoint_every": 2},
                               Hooks(resume_from=kept))  # fmt: skip
            weights = {**{f"full/{k}": v for k, v in full.items()},
                       **{f"resumed/{k}": v for k, v in resumed.items()}}  # fmt: skip
        save_file({k: v.contiguous() for k, v in weights.items()}, f"{out}/rank{rank}.safetensors")
        saved = True
    finally:
        distributed.shutdown(together=saved)


def _run_two(tmp_path: Path, job: str, engine: str, config: dict) -> list[dict]:
    # fork: the children start with torch and the engines imported (spawn re-imports them).
    mp.start_processes(
        _rank, args=(2, _free_port(), job, engine, config, str(tmp_path)), nprocs=2,
        start_method="fork",
    )  # fmt: skip
    return [load_file(str(tmp_path / f"rank{r}.safetensors")) for r in range(2)]


def _assert_close(actual: dict, expected: dict, loose: frozenset[str] = frozenset()) -> None:
    """Equal up to float rounding; the ``loose`` weights to Adam's bound of lr per step."""
    assert actual.keys() == expected.keys()
    for key, value in expected.items():
        atol = 2 * DDPM["lr"] * DDPM["max_steps"] if key in loose else 1e-5
        torch.testing.assert_close(actual[key], value, rtol=1e-4, atol=atol, msg=key)


def _invariant_unet_weights(config: dict[str, Any]) -> frozenset[str]:
    """The UNet weights the loss does not depend on: a conv bias under a group norm of one
    channel per group, an attention key bias under the softmax. Their gradients are float
    noise (~1e-9, against >= 1e-4 for the rest), which Adam scales up to steps of ~lr in
    a direction the noise picks, so one and two processes move them apart."""
    data = _data()
    cfg = ddpm.resolve_config(ddpm.DDPMConfig(**config), 8)
    net = ddpm.build_unet(cfg, data.image_shape[0], data.num_classes)
    x = torch.randn(8, *data.image_shape)
    t, y = torch.randint(0, 1000, (8,)), data.labels[:8]
    F.mse_loss(net(x, t, class_labels=y).sample, torch.randn_like(x)).backward()
    return frozenset(
        f"unet.{name}" for name, p in net.named_parameters() if p.grad.abs().max() < 1e-6
    )


def test_two_ddpm_processes_with_half_batches_match_one_with_the_whole_batch(
    tmp_path: Path,
) -> None:
    one = _weights("ddpm", DDPM)
    rank0, rank1 = _run_two(tmp_path, "train", "ddpm", DDPM)
    _assert_close(rank0, one, loose=_invariant_unet_weights(DDPM))
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0)  # the ranks never drift


@pytest.mark.parametrize("variant", ["dcgan", "vanilla", "wgan-gp"])
def test_two_gan_processes_with_half_batches_match_one_with_the_whole_batch(
    tmp_path: Path, variant: str
) -> None:
    # dcgan, vanilla: batch norm (2d, 1d) over the global batch; wgan-gp: the penalty's ε.
    config = {**GAN, "variant": variant}
    one = _weights("gan", config)
    rank0, _ = _run_two(tmp_path, "train", "gan", config)
    _assert_close(rank0, one)


def test_a_two_process_run_resumed_from_its_checkpoint_ends_bitwise_as_an_uninterrupted_one(
    tmp_path: Path,
) -> None:
    rank0, _ = _run_two(tmp_path, "resume", "ddpm", DDPM)
    full = {k.removeprefix("full/"): v for k, v in rank0.items() if k.startswith("full/")}
    resumed = {k.removeprefix("resumed/"): v for k, v in rank0.items() if k.startswith("resumed/")}
    assert full.keys() == resumed.keys()
    assert all(torch.equal(full[k], resumed[k]) for k in full)


def test_a_batch_that_does_not_split_evenly_over_the_processes_is_refused() -> None:
    with pytest.raises(EngineError, match="batch_size 9 does not split evenly over 2 GPUs"):
        distributed.Shard(rank=0, world_size=2).rows(9)


def test_without_a_process_group_a_run_trains_on_the_whole_batch() -> None:
    shard = distributed.current()
    assert (shard.rank, shard.world_size, shard.rows(8)) == (0, 1, slice(0, 8))


@pytest.mark.parametrize("engine", list(DATA_PARALLEL_ENGINES))
def test_every_default_batch_size_is_the_multiple_submit_counts_on(engine: str) -> None:
    # Submit accepts gpus without a batch_size only when gpus divides this multiple.
    sizes = ddpm.SUPPORTED_IMAGE_SIZES if engine == "ddpm" else nets.SUPPORTED_SIZES
    for size in sizes:
        batch_size = engines.get(engine).default_config(image_size=size)["batch_size"]
        assert batch_size % DEFAULT_BATCH_MULTIPLE == 0, (size, batch_size)
