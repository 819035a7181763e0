"""What the dataset card (README.md) and the Croissant record (croissant.json) of a
generated set say, gathered once by the handler that made the set: the job, the files,
the model version with its lineage and the figures of the evaluate jobs already run on it.
Plain data, so both documents are rendered (and tested) without a database or a model."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.model_versions.service import IMPORTED_DATASET

EVALUATION_PREFIX = "evaluation "
"""How an evaluate job files its summary in a version's metrics ("evaluation mnist:test")."""

# Licenses of the built-in training sets, as their publishers declare them (SPDX ids, the
# form a Hugging Face card takes); a set not listed here declares none.
BUILTIN_LICENSES: dict[str, tuple[str, str]] = {
    "digits": ("cc-by-4.0", "UCI ML repository, Optical Recognition of Handwritten Digits"),
    "fashion_mnist": ("mit", "Zalando Research, github.com/zalandoresearch/fashion-mnist"),
}


@dataclass(frozen=True)
class Description:
    job_id: str
    kind: str
    """generate or txt2img"""
    created_at: datetime
    output_format: str
    location: str
    """Where the images are: "images.zip", "data/train-{00000..00002}.parquet", ..."""
    count: int
    image_shape: tuple[int, int, int]
    class_names: list[str]
    counts: list[int]
    """Images per class, in class order."""
    files: dict[str, int]
    """The job's files by name with their size in bytes (not one per image)."""
    sha256: dict[str, str]
    """SHA-256 of the archives, shards and manifest (the files croissant.json lists)."""
    sampling: dict[str, Any]
    """What the images were sampled with: the request's seed, labels and sampler options."""
    model: dict[str, Any]
    """The version: id, name, version, engine, dataset, train_job_id, config, created_at."""
    lineage: dict[str, Any] | None
    evaluations: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The evaluate summaries already attached to the version, by reference ("mnist:test")."""
    code_version: str = ""

    @property
    def privacy(self) -> dict[str, Any] | None:
        """The version's differential-privacy record (None: not trained with DP)."""
        return (self.lineage or {}).get("privacy")

    @property
    def training_set(self) -> str | None:
        """The training set's name ("mnist", "ds_…"); None when unknown (imports)."""
        ref = ((self.lineage or {}).get("dataset") or {}).get("ref") or self.model.get("dataset")
        if not ref or ref == IMPORTED_DATASET:
            return None
        return str(ref).partition(":")[0] or None

    @property
    def license(self) -> tuple[str, str]:
        """(license id, why): the training set's declared license, else "other"."""
        name = self.training_set
        if name in BUILTIN_LICENSES:
            spdx, source = BUILTIN_LICENSES[name]
            return spdx, f"inherited from the training set, {name}, as declared by {source}"
        if name is None:
            return "other", (
                "the training data of this model is not known to synthgen (an imported model), "
                "so no license could be inherited; check the model's own terms"
            )
        return "other", (
            f"the training set, {name}, declares no license to synthgen; these images derive "
            "from it, so the terms of that data apply"
        )


def evaluations_of(metrics: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """The evaluate summaries in a version's metrics, by reference."""
    return {
        key[len(EVALUATION_PREFIX) :]: value
        for key, value in sorted((metrics or {}).items())
        if key.startswith(EVALUATION_PREFIX) and isinstance(value, dict)
    }


def model_of(version: Any) -> dict[str, Any]:
    """What the documents say of a model version row (core.model_versions.orm)."""
    return {
        "id": version.id,
        "name": version.name,
        "version": version.version,
        "engine": version.engine,
        "dataset": version.dataset,
        "train_job_id": version.train_job_id,
        "config": version.config,
    }
