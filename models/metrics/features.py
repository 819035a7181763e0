"""Feature extractors: what FD, KID, precision/recall and the Inception Score measure in.

Two kinds (ARCHITECTURE.md, Seams: "Features for FID"):

- :class:`InceptionFeatures`: the standard FID network's 2048-d pool3 features, when the
  weights file is on disk. Only distances in these features are called FID.
- :class:`ClassifierFeatures`: the 128-d penultimate features of a small CNN trained on the
  reference dataset's train split (:func:`dataset_classifier`), cached per dataset and
  image shape. Distances in them are "FD (<dataset> classifier)", never FID.

Every extractor takes uint8 (n, c, h, w) and returns float32 (n, dim) features and
(n, k) logits; it batches internally, so callers pass any n.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from models.datasets import ImageDataset
from models.metrics import classifier as classifiers
from models.metrics.classifier import ClassifierConfig, SmallCNN
from models.metrics.errors import MetricsError
from models.metrics.inception import NUM_LOGITS, POOL_DIM, load_fid_inception
from models.metrics.report import FeatureInfo

CACHE_FORMAT_VERSION = 1


@runtime_checkable
class FeatureExtractor(Protocol):
    name: str
    """What the features are, for the report: "Inception-v3 pool3", "digits classifier (16px)"."""
    tag: str
    """The short name metric labels carry: "FID (Inception-v3)", "FD (digits classifier)"."""
    standard: bool
    """True only for the standard FID Inception network: only its distance is called FID."""
    dim: int

    def __call__(self, images: torch.Tensor) -> np.ndarray:
        """uint8 (n, c, h, w) -> float32 (n, dim)."""
        ...

    def with_logits(self, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """uint8 (n, c, h, w) -> (features float32 (n, dim), logits float32 (n, k))."""
        ...


def metric_label(metric: str, extractor: FeatureExtractor) -> str:
    """ "FD" -> "FID (Inception-v3)" or "FD (digits classifier)"; others keep their name."""
    if metric == "FD" and extractor.standard:
        return f"FID ({extractor.tag})"
    return f"{metric} ({extractor.tag})"


class InceptionFeatures:
    """Inception-v3 pool3 features (2048-d) and unbiased fc logits (1008) of the FID network.

    Preprocessing as pytorch-fid: uint8 / 255, grayscale repeated to 3 channels, bilinear
    resize to 299, scaled to [-1, 1] (inside :class:`~models.metrics.inception.FIDInceptionV3`).
    """

    name = "Inception-v3 pool3 (pt_inception-2015-12-05)"
    tag = "Inception-v3"
    standard = True
    dim = POOL_DIM
    num_logits = NUM_LOGITS

    def __init__(
        self, weights: Path, device: torch.device | str = "cpu", batch_size: int = 50
    ) -> None:
        if not weights.is_file():
            raise MetricsError(
                f"Inception weights not found at {weights}; download pytorch-fid's "
                "pt_inception-2015-12-05-6726825d.pth and set SYNTHGEN_INCEPTION_WEIGHTS to it"
            )
        self.weights = weights
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.model = load_fid_inception(weights).to(self.device)
        if self.device.type == "cuda":
            # NHWC convolutions use the tensor cores (TF32, as cuDNN does by default); the
            # features stay those of fp32 to ~1e-3 and the FID to well within that.
            self.model = self.model.to(memory_format=torch.channels_last)

    def __call__(self, images: torch.Tensor) -> np.ndarray:
        return self.with_logits(images)[0]

    @torch.inference_mode()
    def with_logits(self, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        if images.shape[1] not in (1, 3):
            raise MetricsError(f"Inception takes 1- or 3-channel images, got {images.shape[1]}")
        feats, logits = [], []
        for start in range(0, images.shape[0], self.batch_size):
            x = images[start : start + self.batch_size].to(self.device).float() / 255.0
            if x.shape[1] == 1:
                x = x.repeat(1, 3, 1, 1)
            pool, fc = self.model(x)
            feats.append(pool.cpu().numpy())
            logits.append(fc.cpu().numpy())
        return _cat(feats, self.dim), _cat(logits, self.num_logits)


class ClassifierFeatures:
    """128-d penultimate features and logits of a :class:`SmallCNN` trained on one dataset."""

    standard = False
    dim = classifiers.PENULTIMATE_DIM

    def __init__(
        self,
        model: SmallCNN,
        *,
        dataset: str,
        image_shape: tuple[int, int, int],
        num_classes: int,
        test_accuracy: float,
        batch_size: int = 512,
    ) -> None:
        self.model = model.eval()
        self.dataset = dataset
        self.image_shape = image_shape
        self.num_classes = num_classes
        self.test_accuracy = test_accuracy
        """Accuracy on the dataset's test split: how far its judgement can be trusted."""
        self.batch_size = batch_size
        self.tag = f"{dataset} classifier"
        self.name = f"{dataset} classifier ({image_shape[-1]}px)"

    def __call__(self, images: torch.Tensor) -> np.ndarray:
        return self.with_logits(images)[0]

    @torch.inference_mode()
    def with_logits(self, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        if tuple(images.shape[1:]) != self.image_shape:
            raise MetricsError(
                f"the {self.name} takes images of shape {self.image_shape}, got "
                f"{tuple(images.shape[1:])}; load the reference at the generator's image size"
            )
        device = next(self.model.parameters()).device
        feats, logits = [], []
        for start in range(0, images.shape[0], self.batch_size):
            x = classifiers.to_input(images[start : start + self.batch_size].to(device))
            hidden = self.model.features(x)
            feats.append(hidden.cpu().numpy())
            logits.append(self.model.head(hidden).cpu().numpy())
        return _cat(feats, self.dim), _cat(logits, self.num_classes)


def _cat(chunks: list[np.ndarray], width: int) -> np.ndarray:
    if not chunks:
        return np.zeros((0, width), dtype=np.float32)
    return np.concatenate(chunks).astype(np.float32, copy=False)


def dataset_classifier(
    train: ImageDataset,
    test: ImageDataset,
    cache_dir: Path,
    config: ClassifierConfig | None = None,
    seed: int = 0,
    device: torch.device | str = "cpu",
    should_stop: Callable[[], bool] = lambda: False,
) -> ClassifierFeatures:
    """The reference classifier of ``train.name`` at ``train``'s image shape.

    Loaded from ``cache_dir/<dataset>-<c>x<h>x<w>/`` (classifier.safetensors +
    classifier.json) when a matching artifact is there, else trained on ``train`` alone,
    scored on ``test`` and written there. The JSON records the training config and seed;
    an artifact made with another config or seed is retrained, not reused.
    """
    config = config or ClassifierConfig()
    if config.arch != "small_cnn":
        raise MetricsError("the reference classifier is always a small_cnn; its features define FD")
    if train.split == test.split:
        raise MetricsError(
            f"the reference classifier must be scored on a split other than {train.split!r}"
        )
    c, h, w = (int(s) for s in train.images.shape[1:])
    shape = (c, h, w)
    directory = cache_dir / f"{train.name}-{'x'.join(str(s) for s in shape)}"
    meta = {
        "format_version": CACHE_FORMAT_VERSION,
        "dataset": train.name,
        "train_split": train.split,
        "train_count": len(train),
        "image_shape": list(shape),
        "num_classes": train.num_classes,
        "seed": seed,
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()},
    }
    weights_path, meta_path = directory / "classifier.safetensors", directory / "classifier.json"
    if weights_path.is_file() and meta_path.is_file():
        cached = json.loads(meta_path.read_text())
        if {k: cached.get(k) for k in meta} == meta:
            model = SmallCNN(shape[0], train.num_classes, config.width)
            model.load_state_dict(load_file(str(weights_path)))
            return ClassifierFeatures(
                model.to(device),
                dataset=train.name,
                image_shape=shape,
                num_classes=train.num_classes,
                test_accuracy=float(cached["test_accuracy"]),
            )
    model = classifiers.train_classifier(
        lambda: SmallCNN(shape[0], train.num_classes, config.width),
        train.images,
        train.labels,
        config,
        seed,
        should_stop,
        device,
    )
    test_accuracy = classifiers.accuracy(model, test.images, test.labels)
    directory.mkdir(parents=True, exist_ok=True)
    # Written under temporary names and renamed, weights first: a concurrent evaluation
    # (or a sync to object storage) never sees a JSON without its weights, or half a file.
    partial = weights_path.with_suffix(".partial")
    save_file({k: v.contiguous().cpu() for k, v in model.state_dict().items()}, str(partial))
    partial.replace(weights_path)
    partial.write_text(json.dumps({**meta, "test_accuracy": test_accuracy}, indent=2))
    partial.replace(meta_path)
    return ClassifierFeatures(
        model,
        dataset=train.name,
        image_shape=shape,
        num_classes=train.num_classes,
        test_accuracy=test_accuracy,
    )


def describe(extractor: FeatureExtractor) -> FeatureInfo:
    """What the report's provenance says of a feature extractor."""
    detail = ""
    if isinstance(extractor, ClassifierFeatures):
        detail = (
            f"penultimate layer of a small CNN trained on {extractor.dataset}:train, "
            f"{extractor.test_accuracy:.1%} accurate on {extractor.dataset}:test; having seen "
            "the train split, it may place those images a little apart from the test split, "
            "which can only raise the floor"
        )
    elif isinstance(extractor, InceptionFeatures):
        detail = f"weights {extractor.weights.name}; resize to 299 bilinear, [-1, 1]"
    return FeatureInfo(extractor.name, extractor.tag, extractor.dim, extractor.standard, detail)


def require_inception_weights(weights: Path | None, users: list[str], features: str) -> None:
    """Refuse, before any work, metrics whose Inception weights are missing; say the fix."""
    if not users or (weights is not None and weights.is_file()):
        return
    where = f"not found at {weights}" if weights else "not configured"
    alternative = (
        ", or compute the distances in the reference classifier's features (features: 'classifier')"
        if features == "inception"
        else ""
    )
    raise MetricsError(
        f"{', '.join(users)} need Inception-v3 weights, {where}: set "
        "SYNTHGEN_INCEPTION_WEIGHTS to pytorch-fid's pt_inception-2015-12-05-6726825d.pth"
        + alternative
    )
