"""Fine-tuning: a run whose networks start from a saved model's weights."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import torch

from models.datasets import ImageDataset
from models.engines.base import EngineError
from models.engines.runtime.model_files import read_trained


def init_weights(
    engine: str,
    directory: Path,
    data: ImageDataset,
    targets: Mapping[str, Iterable[torch.nn.Module]],
    optional: frozenset[str] = frozenset(),
) -> None:
    """Load the networks ``save`` wrote in ``directory`` into ``targets`` (saved module
    name → the modules to fill, e.g. the trained net and its EMA copy) for fine-tuning.

    EngineError when the files are another engine's, were trained on another number of
    classes or channels, or do not fit the modules (the config changed the architecture).
    A saved module missing from the files is an error unless it is in ``optional``.
    """
    description, states = read_trained(directory, engine)
    saved_classes = int(description["num_classes"])
    saved_channels = int(description["image_shape"][0])
    if (saved_classes, saved_channels) != (data.num_classes, data.image_shape[0]):
        raise EngineError(
            f"init_from: the parent model was trained on {saved_classes} classes of "
            f"{saved_channels}-channel images; this dataset has {data.num_classes} classes of "
            f"{data.image_shape[0]}-channel images; fine-tune on data with the same classes"
        )
    for name, modules in targets.items():
        if name not in states:
            if name in optional:
                continue
            raise EngineError(f"init_from: the parent model's files hold no {name!r} network")
        for module in modules:
            try:
                module.load_state_dict(states[name])
            except RuntimeError as exc:
                first = str(exc).strip().splitlines()[-1].strip()
                raise EngineError(
                    f"init_from: the parent's {name} does not fit this config ({first}); "
                    "leave out the config keys that shape the network (image_size, widths, "
                    "channel counts) so that they are the parent's"
                ) from None
