"""The metric names an evaluate job may ask for and the feature spaces they are computed
in, declared once (torch-free): ``core/`` validates requests with them, and
:mod:`models.metrics.evaluate` computes them."""

from __future__ import annotations

from typing import Literal, get_args

Metric = Literal[
    "fid",
    "kid",
    "precision_recall",
    "inception_score",
    "class_coverage",
    "classifier_utility",
    "memorization",
    "membership_inference",
]
"""A metric an evaluate job may ask for. "fid" means the Fréchet distance in the chosen
feature space: FID in Inception-v3 features, FD (<dataset> classifier) in the reference
classifier's."""
METRICS: tuple[str, ...] = get_args(Metric)

FeatureSpace = Literal["inception", "classifier"]
"""Where FD, KID and precision/recall are computed: the standard Inception-v3 pool3
features (needs their weights) or the reference dataset's own classifier."""
FEATURE_SPACES: tuple[str, ...] = get_args(FeatureSpace)

DISTANCES: frozenset[str] = frozenset({"fid", "kid", "precision_recall"})
"""The metrics computed in the chosen feature space."""
PRIVACY: tuple[str, ...] = ("memorization", "membership_inference")
"""The privacy audit (issue 25, :mod:`models.metrics.privacy`), in pixels and in the
chosen space: they compare the synthetic images with the model's training set and a
held-out split of the same dataset, so they need that training set known."""
DEFAULT: tuple[str, ...] = ("fid", "kid", "precision_recall")
"""An evaluate job's metrics when the request names none, with the privacy metrics added
when the model's training set is known."""
