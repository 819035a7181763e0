"""A fixture engine for the engine-contract suite: each class's mean image, learnt by SGD,
sampled with Gaussian noise. One module and one ``engines.register`` line, as a real one."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from pydantic.dataclasses import dataclass

from models.datasets import ImageDataset
from models.engine_options.base import CONFIG, Float, Int, TrainOptions, option
from models.engines.base import Trained
from models.engines.runtime import pixels, sampling
from models.engines.runtime.engine import RuntimeEngine
from models.engines.runtime.run import TrainingRun


@dataclass(config=CONFIG)
class MeanOptions(TrainOptions):
    ENGINE: ClassVar[str] = "mean"
    batch_size: Int = option(4, ge=1, le=64, help="images per step")
    lr: Float = option(0.5, gt=0, le=1, help="SGD step towards each batch")
    noise: Float = option(0.2, ge=0, le=1, help="σ of the noise added to a sampled mean")


class MeanNet(torch.nn.Module):
    def __init__(self, num_classes: int, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.means = torch.nn.Parameter(torch.zeros(max(num_classes, 1), *shape))


class _Run(TrainingRun[MeanOptions]):
    engine = "mean"

    def build(self, data: ImageDataset) -> None:
        self.net = MeanNet(data.num_classes, tuple(self.images.shape[1:]))
        self.optimizer = torch.optim.SGD(self.net.parameters(), lr=self.config.lr)

    def train_step(self) -> dict[str, float]:
        index = self.order.next_indices()
        x = pixels.to_unit_range(self.images[index])
        y = self.labels[index] if self.config.conditional else torch.zeros_like(index)
        loss = (self.net.means[y] - x).pow(2).mean()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.step += 1
        self.recent.append({"loss": float(loss.detach())})
        return self.recent[-1]

    def stateful(self) -> dict[str, Any]:
        return {"net": self.net, "optimizer": self.optimizer}


class MeanEngine(RuntimeEngine[MeanOptions]):
    name = "mean"
    options = MeanOptions
    run_class = _Run
    sampler_module = "net"

    def trained_modules(self, run: _Run) -> dict[str, torch.nn.Module]:
        return {"net": run.net}

    def build_sampler(self, config: MeanOptions, channels: int, num_classes: int) -> MeanNet:
        assert config.image_size is not None
        return MeanNet(num_classes, (channels, config.image_size, config.image_size))

    def draw(self, trained: Trained, config: MeanOptions, want: sampling.Draw) -> torch.Tensor:
        n, labels, seed, opts = want.n, want.labels, want.seed, want.opts
        batch_size = opts.get("batch_size", 256)
        sampling.check_positive_int("batch_size", batch_size)
        means = trained.modules["net"].means.detach().cpu()
        y = labels if labels is not None else torch.zeros(n, dtype=torch.int64)
        generator = torch.Generator().manual_seed(seed)
        out = torch.empty((n, *trained.image_shape), dtype=torch.uint8)
        ticks = sampling.SampleProgress(opts, math.ceil(n / batch_size), "batches")
        for part in sampling.iter_batches(n, batch_size):
            ticks.check_stop()
            noise = torch.randn(out[part].shape, generator=generator)
            out[part] = pixels.to_uint8(means[y[part]] + config.noise * noise)
            ticks.tick()
        return out


ENGINE = MeanEngine()
