"""Sampled shards of a generate job, kept in storage until the job ends.

A shard is minutes of sampling; when the worker dies mid-job, the job resumes on another
worker and takes every shard already in ``jobs/{job_id}/shards/`` from there instead of
sampling it again. Shards are a pure function of (request, shard index) — each has its
own seed — so a reused shard holds exactly the images a fresh one would: the output has
``count`` images, in order, whichever worker sampled each.
"""

from __future__ import annotations

import io

import numpy as np

from core.storage import Storage


class ShardCache:
    def __init__(self, storage: Storage, job_prefix: str) -> None:
        self.storage = storage
        self.prefix = f"{job_prefix}/shards/"
        self.present = {
            obj.key[len(self.prefix) :].removesuffix(".npy") for obj in storage.list(self.prefix)
        }
        self.reused = 0

    def _key(self, shard: int) -> str:
        return f"{self.prefix}{shard:06d}.npy"

    def get(self, shard: int) -> np.ndarray | None:
        """The shard's images uint8 (n, c, h, w) when a previous run stored them."""
        if f"{shard:06d}" not in self.present:
            return None
        images = np.load(io.BytesIO(self.storage.get_bytes(self._key(shard))), allow_pickle=False)
        self.reused += 1
        return images

    def put(self, shard: int, images: np.ndarray) -> None:
        buf = io.BytesIO()
        np.save(buf, images, allow_pickle=False)
        self.storage.put_bytes(self._key(shard), buf.getvalue(), "application/octet-stream")

    def clear(self) -> None:
        self.storage.delete_prefix(self.prefix)
