"""The order minibatches are drawn in: seeded and resumable."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from models.engines.base import EngineError


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
