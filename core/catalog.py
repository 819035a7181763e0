"""What the service offers, as plain names: engines, datasets and their splits, metrics,
and each engine's config keys. The API validates against these without importing torch;
a unit test keeps them equal to what ``models/`` really implements."""

from __future__ import annotations

ENGINES: tuple[str, ...] = ("ddpm", "gan", "ebm")
# Engines that train on several GPUs (models/engines/distributed.py); ebm's replay buffer
# of Langevin samples is per process.
DATA_PARALLEL_ENGINES: tuple[str, ...] = ("ddpm", "gan")

DATASET_SPLITS: dict[str, tuple[str, ...]] = {
    "digits": ("train", "test"),
    "shapes": ("train", "test"),
    "mnist": ("train", "test"),
    "fashion_mnist": ("train", "test"),
    "cifar10": ("train", "test"),
    "mnist_t10k": ("train", "test"),
}

METRICS: tuple[str, ...] = (
    "fid",
    "kid",
    "precision_recall",
    "inception_score",
    "class_coverage",
    "classifier_utility",
)

# Where an evaluate job computes its distances (request ``config.features``): the
# standard Inception-v3 features (FID; needs their weights) or the reference dataset's
# own classifier (FD). These metrics are computed in that space.
FEATURE_SPACES: tuple[str, ...] = ("inception", "classifier")
DISTANCE_METRICS: frozenset[str] = frozenset({"fid", "kid", "precision_recall"})

# Sampling options each engine's ``sample`` accepts (generate job ``config``).
SAMPLE_OPTIONS: dict[str, frozenset[str]] = {
    "ddpm": frozenset({"sampler", "steps", "guidance_scale", "eta"}),
    "gan": frozenset(),
    "ebm": frozenset({"steps", "step_size", "noise"}),
}


def dataset_ref_pattern() -> str:
    """A regular expression matching every valid ``name`` or ``name:split`` (documents the
    field in the OpenAPI schema; parse_dataset_ref gives the error messages)."""
    refs = "|".join(f"{name}(:({'|'.join(splits)}))?" for name, splits in DATASET_SPLITS.items())
    return f"^({refs})$"


def parse_dataset_ref(ref: str, *, default_split: str) -> tuple[str, str]:
    """``"digits"`` or ``"digits:test"`` → (name, split); ValueError naming what is valid."""
    name, _, split = ref.partition(":")
    split = split or default_split
    if name not in DATASET_SPLITS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASET_SPLITS)}")
    if split not in DATASET_SPLITS[name]:
        raise ValueError(
            f"dataset {name!r} has no split {split!r}; choose one of "
            f"{', '.join(DATASET_SPLITS[name])}"
        )
    return name, split


# The image size a train job gets when its config names none (the dataset's native size,
# or 16 for the 8x8 digits, which the UNet needs at least).
DEFAULT_IMAGE_SIZE: dict[str, int] = {
    "digits": 16,
    "shapes": 16,
    "mnist": 28,
    "fashion_mnist": 28,
    "cifar10": 32,
    "mnist_t10k": 28,
}
