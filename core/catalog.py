"""What the service offers, as plain names: engines, datasets and their splits, metrics,
and the rules on dataset references. The names are declared once, torch-free, in
``models.engine_options`` (what the engines and loaders use too); this module gives core
one place to read them, and the API validates against them without importing torch."""

from __future__ import annotations

import re

from models import engine_options
from models.engine_options import datasets, metrics

ENGINES: tuple[str, ...] = tuple(engine_options.CONFIGS)
DATA_PARALLEL_ENGINES: tuple[str, ...] = tuple(
    name for name, options in engine_options.CONFIGS.items() if options.DATA_PARALLEL
)

DATASET_SPLITS: dict[str, tuple[str, ...]] = datasets.BUILTIN_SPLITS
DEFAULT_IMAGE_SIZE: dict[str, int] = datasets.DEFAULT_IMAGE_SIZE

PRIVACY_METRICS: tuple[str, ...] = metrics.PRIVACY
DEFAULT_METRICS: tuple[str, ...] = metrics.DEFAULT
SPACE_METRICS: frozenset[str] = metrics.DISTANCES | frozenset(PRIVACY_METRICS)
"""The metrics computed in the chosen feature space (the privacy ones in pixels too)."""


# An uploaded dataset is named by its id, "ds_" and 32 hex digits; it has the two splits
# made once when it was validated.
UPLOAD_PREFIX = "ds_"
UPLOAD_SPLITS: tuple[str, ...] = ("train", "test")
UPLOAD_ID_PATTERN = r"^ds_[0-9a-f]{32}$"

# The engine name of an imported diffusers pipeline (txt2img jobs only; it is not one of
# ENGINES, which train and generate).
PIPELINE_ENGINE = "diffusers"


def is_upload(name: str) -> bool:
    return name.startswith(UPLOAD_PREFIX)


# A tenant's uploaded dataset may also be named by its ``name`` (unique per tenant):
# anything that is not a built-in's name or an id, without ":" (which starts the split)
# or "/", and without spaces at either end. Jobs store the id it resolves to at submit.
DATASET_NAME_PATTERN = r"^[^:/\s](?:[^:/]{0,198}[^:/\s])?$"


def is_dataset_name(name: str) -> bool:
    """True for a name an uploaded dataset may have (not a built-in's, not an id)."""
    return (
        name not in DATASET_SPLITS
        and not is_upload(name)
        and re.fullmatch(DATASET_NAME_PATTERN, name) is not None
    )


def check_dataset_ref(ref: str, *, default_split: str) -> None:
    """What a request may send: a valid built-in or id reference (parse_dataset_ref), or
    an uploaded dataset's name with a split an upload has (resolved at submit)."""
    name, _, split = ref.partition(":")
    if is_upload(name) or name in DATASET_SPLITS or not is_dataset_name(name):
        parse_dataset_ref(ref, default_split=default_split)
        return
    if (split or default_split) not in UPLOAD_SPLITS:
        raise ValueError(
            f"an uploaded dataset has no split {split!r}; choose one of {', '.join(UPLOAD_SPLITS)}"
        )


def dataset_ref_pattern() -> str:
    """A regular expression matching every valid ``name`` or ``name:split``, built-in or
    uploaded (``ds_…``) (documents the field in the OpenAPI schema; parse_dataset_ref gives
    the error messages)."""
    splits = list(DATASET_SPLITS.items())
    splits.append((UPLOAD_ID_PATTERN.strip("^$"), UPLOAD_SPLITS))
    splits.append((r"[^:/\s](?:[^:/]{0,198}[^:/\s])?", UPLOAD_SPLITS))  # a dataset's name
    refs = "|".join(f"{name}(:({'|'.join(names)}))?" for name, names in splits)
    return f"^({refs})$"


def parse_dataset_ref(ref: str, *, default_split: str) -> tuple[str, str]:
    """``"digits"``, ``"digits:test"`` or ``"ds_…:test"`` → (name, split); ValueError
    naming what is valid. Whether an uploaded dataset exists is for the caller to check."""
    name, _, split = ref.partition(":")
    split = split or default_split
    if is_upload(name):
        if re.fullmatch(UPLOAD_ID_PATTERN, name) is None:
            raise ValueError(f"{name!r} is not a dataset id (ds_ and 32 hex digits)")
        if split not in UPLOAD_SPLITS:
            raise ValueError(
                f"an uploaded dataset has no split {split!r}; choose one of "
                f"{', '.join(UPLOAD_SPLITS)}"
            )
        return name, split
    if name not in DATASET_SPLITS:
        raise ValueError(
            f"unknown dataset {name!r}; choose one of {', '.join(DATASET_SPLITS)}, or an "
            "uploaded dataset's name or id (ds_…)"
        )
    if split not in DATASET_SPLITS[name]:
        raise ValueError(
            f"dataset {name!r} has no split {split!r}; choose one of "
            f"{', '.join(DATASET_SPLITS[name])}"
        )
    return name, split


def held_out_split(split: str) -> str:
    """The split of the same dataset a model trained on ``split`` never saw: the privacy
    audit's non-members and its real-vs-real floor (every dataset here has train and test)."""
    return "test" if split == "train" else "train"


EVALUATE_REFERENCE_SPLIT = "test"
"""The split an evaluate job judges a model on when its ``reference`` names none."""


def scoring_split(name: str, split: str) -> str | None:
    """The split a train job on ``name:split`` scores its weights against while training
    (keep-best): another split of the dataset that is not the one evaluate judges on by
    default, so the choice of weights never looks at the images the user judges them by;
    None: there is none (a model trained on ``train``), and a seeded slice of the training
    split is held out instead."""
    splits = UPLOAD_SPLITS if is_upload(name) else DATASET_SPLITS[name]
    others = [s for s in splits if s not in (split, EVALUATE_REFERENCE_SPLIT)]
    return others[0] if others else None
