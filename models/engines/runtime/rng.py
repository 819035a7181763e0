"""Randomness: seeding every RNG a run touches, and snapshots of the global ones that a
checkpoint carries so a resumed run draws what an uninterrupted one would."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch


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
