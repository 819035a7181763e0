"""A training run's held-out score: generated images against real ones the optimiser never
saw, in a feature space of :mod:`.features` (keep-best, :mod:`models.engines.runtime.selection`).

The same measures an evaluate job reports, on a small fixed sample: the Fréchet distance
(:func:`.frechet.frechet_distance`) in the extractor's features, and, for a conditional
model, label agreement: the share of images the dataset classifier assigns the class
they were drawn for (:mod:`.coverage`'s measure over all classes). The held-out side's
statistics are computed once.
"""

from __future__ import annotations

import numpy as np
import torch

from models.datasets import ImageDataset
from models.metrics.features import FeatureExtractor
from models.metrics.frechet import frechet_distance

SAMPLES = ((16, 200), (None, 100))
"""Generated images per evaluation by image size (up to 16 px, else): few enough that
drawing them stays a small part of training (ddpm's 500 at 16 px cost 800 training steps,
BENCHMARKS.md, "Keep-best"); label agreement's sampling error near 0.98 is then 0.01
(200) to 0.014 (100), about the tolerance within which FD decides."""


def sample_count(image_size: int) -> int:
    """Images each evaluation draws at ``image_size`` (:data:`SAMPLES`)."""
    return next(n for up_to, n in SAMPLES if up_to is None or image_size <= up_to)


class HeldOutScore:
    """Scores ``count`` generated images against ``held_out`` in ``extractor``'s features.

    extractor: the dataset classifier (:func:`.features.dataset_classifier`), whose logits
    also judge the classes; held_out: uint8 (m, c, s, s) images at the model's size.
    """

    def __init__(self, extractor: FeatureExtractor, held_out: ImageDataset, count: int) -> None:
        features = extractor(held_out.images)
        self.extractor = extractor
        self.count = count
        self.features = extractor.name
        self.mu = features.mean(axis=0)
        self.sigma = np.cov(features, rowvar=False)

    def __call__(self, images: torch.Tensor, labels: torch.Tensor | None) -> dict[str, float]:
        features, logits = self.extractor.with_logits(images)
        fd = frechet_distance(
            features.mean(axis=0), np.cov(features, rowvar=False), self.mu, self.sigma
        )
        scores = {"fd": float(fd)}
        if labels is not None:
            agree = logits.argmax(axis=1) == labels.cpu().numpy()
            scores["label_agreement"] = float(agree.mean())
        return scores
