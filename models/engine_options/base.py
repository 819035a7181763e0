"""How an engine option is declared: a field of a pydantic dataclass with its type, bounds,
default (fixed, by image size, or by another option) and help text, all in one place.

The classes are stdlib dataclasses underneath (``dataclasses.replace``, ``asdict`` and
``fields`` work), validated on construction by pydantic: the engine builds one from a
job's config and the API validates the job body with the very same class, so an option's
bounds are enforced identically at submit and in the worker. Numbers follow JSON Schema:
``true`` is not 1, ``"5"`` is not 5, and ``25.0`` is the integer 25.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import ConfigDict, Field, Strict, ValidationInfo, field_validator, model_validator
from pydantic.dataclasses import dataclass
from pydantic_core import ArgsKwargs

Int = Annotated[int, Strict()]
Float = Annotated[float, Strict()]
Bool = Annotated[bool, Strict()]

BY_IMAGE_SIZE = "x-default-by-image-size"
"""Schema keyword of a default that depends on the image size: ``[[up_to, value], ...]``,
the value of the first step whose ``up_to`` (px, null for "any larger") is not exceeded."""
BY_OPTION = "x-default-by"
"""Schema keyword of a default taken from another option: ``{"option": name, "values":
{choice: value}}`` (gan's learning rates follow its ``variant``)."""

MAX_TRAIN_WORK = 10**12
"""Bound of max_steps × batch_size × image_size² (pixels through the network): a million
steps of 128 images at 88 px, so no single request asks for unbounded work. Options left
out count at the largest default an engine takes (batch 128, 32 px)."""

MAX_STEPS = 5000
"""The default run length; an engine may default to fewer by image size (ebm from 28 px),
never more: an unresolved ``max_steps`` counts as this in the work limit."""

Steps = Sequence[tuple[int | None, Any]]

SELECTION_OPTIONS = frozenset({"eval_every", "keep", "early_stop_patience"})
"""Options that choose which weights a run keeps (scoring on held-out images), not how it
trains: a fine-tuning job does not inherit them from its parent."""

EVAL_EVERY: Steps = [(16, 250), (None, 500)]
"""Steps between scorings by image size, unless an engine declares its own: scoring then
costs about a tenth of the training time or less. Measured on CPU (BENCHMARKS.md,
"Keep-best"): gan's evaluation costs 2 (16 px) to 19 (28 px) training steps."""

EVAL_EVERY_SLOW_SAMPLER: Steps = [(None, 500)]
"""For engines whose sampler takes many network passes: an ebm evaluation (60 to 400
Langevin steps) costs 39 (16 px) to 40 (28 px) training steps, a ddpm one (20 DDIM
steps) 48 (16 px) to 23 (28 px); at 500 it costs under a tenth."""


def eval_every_option(steps: Steps) -> Any:
    """The ``eval_every`` field with the default ``steps`` (an engine's own table)."""
    return option(
        ge=0,
        le=1_000_000,
        by_size=steps,
        help="steps between scorings of the sampling weights on a held-out part of the "
        "data (FD in the dataset classifier's features, label agreement when conditional), "
        "and at the last step; 0: off; null: by image size, so scoring costs about a tenth "
        "of the training time (off for a private run, and for a run shorter than that)",
    )


OptionsT = TypeVar("OptionsT", bound="TrainOptions")
CONFIG = ConfigDict(extra="forbid", validate_default=False)
"""Every options class: unknown keys refused (strictness is per type, see Int/Float/Bool,
so a class nested in a request model still takes a JSON object)."""


def option(
    default: Any = None,
    *,
    help: str,  # noqa: A002 - the word every CLI uses for it
    by_size: Steps | None = None,
    by_option: tuple[str, dict[str, Any]] | None = None,
    factory: typing.Callable[[], Any] | None = None,
    **bounds: Any,
) -> Any:
    """A field: ``default`` (None with ``by_size``/``by_option``: derived when resolved),
    ``help`` (the description everywhere), bounds as pydantic's ``ge``, ``le``, ..."""
    extra: dict[str, Any] = {}
    if by_size is not None:
        extra[BY_IMAGE_SIZE] = [[up_to, value] for up_to, value in by_size]
    if by_option is not None:
        extra[BY_OPTION] = {"option": by_option[0], "values": by_option[1]}
    if factory is not None:
        return Field(default_factory=factory, description=help, **bounds)
    return Field(default=default, description=help, json_schema_extra=extra or None, **bounds)


def pick(steps: Steps | list[list[Any]], image_size: int) -> Any:
    """The value of the first step whose bound ``image_size`` does not exceed."""
    for up_to, value in steps:
        if up_to is None or image_size <= up_to:
            return list(value) if isinstance(value, list | tuple) else value
    raise ValueError(f"no default for image size {image_size}")  # tables end with None


def steps_text(steps: Steps | list[list[Any]]) -> str:
    """``[[28, 32], [None, 128]]`` → "32 up to 28 px, else 128"."""
    parts = [
        f"{_value_text(value)} up to {up_to} px" if up_to is not None else _value_text(value)
        for up_to, value in steps
    ]
    return ", ".join(parts[:-1]) + (", else " if len(parts) > 1 else "") + parts[-1]


def _value_text(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value_text(v) for v in value) + "]"
    return f"{value:g}" if isinstance(value, float) else str(value)


DELTA_RULE = "the largest power of ten below 1/n, n the training examples (1e-4 for 1,000 to 9,999)"
"""How a left-out δ is chosen, once the data's size is known (:func:`default_delta`)."""


def default_delta(n: int) -> float:
    """δ for ``n`` training examples: the largest power of ten below 1/n (10^-(digits of n)),
    so the chance of a total failure stays under that of publishing one record."""
    return 10.0 ** -len(str(n))


@dataclass(config=CONFIG)
class PrivacyOptions:
    """(ε, δ)-differential privacy of the trained weights by DP-SGD (Abadi et al. 2016):
    every example's gradient clipped to ``max_grad_norm``, Gaussian noise added, batches
    drawn by Poisson sampling, ε counted by the PRV accountant (Opacus)."""

    epsilon: Float = option(
        ...,
        ge=0.01,
        le=100,
        help="ε the whole run may spend (at max_steps); the noise is solved for it",
    )
    delta: Float | None = option(
        None,
        gt=0,
        lt=1,
        help=f"δ (must be below 1/n); null: {DELTA_RULE}",
    )
    max_grad_norm: Float = option(
        1.0, gt=0, le=1e6, help="C: each example's gradient is clipped to this ℓ2 norm"
    )


@dataclass(config=CONFIG)
class TrainOptions:
    """The options every engine takes, and what every engine's options class has: its
    engine's name and image sizes, the derivation of left-out options (:meth:`resolved`),
    JSON numbers, and the bound on a job's total work."""

    ENGINE: ClassVar[str] = ""
    IMAGE_SIZES: ClassVar[tuple[int, ...]] = ()
    """Image sizes the engine's networks are built for (``image_size`` is one of them)."""
    DATA_PARALLEL: ClassVar[bool] = False
    """Whether a job may train it on several GPUs (``gpus`` > 1, models/engines/distributed.py)."""
    SAMPLING_DEFAULTS: ClassVar[frozenset[str]] = frozenset()
    """Options that only set what sampling uses when a request names nothing: they do not
    shape the training run, so a resumed run may change them."""

    max_steps: Int = option(
        MAX_STEPS, ge=1, le=1_000_000, help="optimiser steps to train (the run's length)"
    )
    max_seconds: Float | None = option(
        None,
        gt=0,
        le=7 * 24 * 3600,
        help="stop training after this many seconds and keep the model so far; null: no limit",
    )
    image_size: Int | None = option(
        None,
        ge=4,
        le=512,
        help="train at this square size, one of the engine's image sizes (images are "
        "resized); null: the dataset's own size (16 for digits)",
    )
    conditional: Bool = option(
        True, help="learn p(x | class), so generate jobs can ask for labels; false: ignore labels"
    )
    seed: Int = option(0, ge=0, le=2**31 - 1, help="seeds weights, data order and noise")
    checkpoint_every: Int = option(
        500,
        ge=0,
        le=1_000_000,
        help="steps between resumable checkpoints (a re-queued job resumes from the last "
        "one, bit-exact); 0: off",
    )
    eval_every: Int | None = eval_every_option(EVAL_EVERY)
    keep: Literal["best", "last"] | None = option(
        None,
        help='the weights the model version keeps: "best", those of the best-scoring '
        'evaluation; "last", those of the last step; null: "best" when scoring is on',
    )
    early_stop_patience: Int | None = option(
        None,
        ge=1,
        le=10_000,
        help="end the run after this many evaluations without a better score (needs "
        "eval_every > 0); null: off",
    )

    privacy: PrivacyOptions | None = option(
        None,
        help='differentially private training (DP-SGD with Opacus): {"epsilon": ε, 0.01 to '
        '100, spent over max_steps; "delta": δ below 1/n, null: ' + DELTA_RULE + "; "
        '"max_grad_norm": C > 0, default 1, each example\'s gradient clipped to it}. Refused '
        "with max_seconds, gpus > 1, or init_from a model trained on the same data without "
        "privacy; null: not private",
    )

    @model_validator(mode="before")
    @classmethod
    def _json_numbers(cls, data: Any) -> Any:
        return json_numbers(cls, data)

    @field_validator("image_size")
    @classmethod
    def _supported_size(cls, value: int | None) -> int | None:
        if value is not None and cls.IMAGE_SIZES and value not in cls.IMAGE_SIZES:
            raise ValueError(
                f"image_size {value} is not supported by the {cls.ENGINE} engine; "
                f"use one of {list(cls.IMAGE_SIZES)}"
            )
        return value

    # Rules between the selection options, each on the later field so a refusal names it
    # (fields are validated in their order: info.data holds the earlier ones).
    @field_validator("keep")
    @classmethod
    def _keep_needs_scoring(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value == "best" and info.data.get("eval_every") == 0:
            raise ValueError('"best" needs scoring: set eval_every > 0, or keep "last"')
        return value

    @field_validator("early_stop_patience")
    @classmethod
    def _patience_needs_scoring(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is not None and info.data.get("eval_every") == 0:
            raise ValueError("needs scoring: set eval_every > 0, or leave it null")
        return value

    @field_validator("privacy")
    @classmethod
    def _private_keeps_last(cls, value: Any, info: ValidationInfo) -> Any:
        if value is not None and (
            info.data.get("keep") == "best" or info.data.get("early_stop_patience") is not None
        ):
            # Choosing weights by held-out images would let those images, outside the
            # private training set and its ε, decide what is published.
            raise ValueError(
                'keep "best" and early_stop_patience choose the weights by held-out images '
                'that ε does not cover; use keep "last" and no early stop'
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Any:
        batch = getattr(self, "batch_size", None) or 128
        steps = self.max_steps if self.max_steps is not None else MAX_STEPS
        work = steps * batch * (self.image_size or 32) ** 2
        if work > MAX_TRAIN_WORK:
            raise ValueError(
                f"max_steps × batch_size × image_size² is {work:.3g}, over the limit of "
                f"{MAX_TRAIN_WORK:.0e}; lower one of them"
            )
        if self.privacy is not None:
            self._check_privacy()
        self.check()
        return self

    def check(self) -> None:
        """Rules between options (override; raise ValueError saying how to fix it)."""

    def _check_privacy(self) -> None:
        if self.max_seconds is not None:
            raise ValueError(
                "privacy: max_seconds cannot be set on a private run: the noise is solved "
                "for a fixed number of steps (max_steps); leave max_seconds null"
            )
        refusal = self.privacy_refusal()
        if refusal is not None:
            raise ValueError(f"privacy: {refusal}")

    def privacy_refusal(self) -> str | None:
        """Why this config cannot train with ``privacy`` (override where some cannot): the
        reason, saying what to change; None when it can."""
        return None

    def resolved(self: OptionsT, image_size: int) -> OptionsT:
        """A copy for ``image_size`` with every left-out (None) option derived from its
        declared default by image size or by another option; validated again."""
        values = {**dataclasses.asdict(self), "image_size": image_size}
        if values["privacy"] is not None and values["eval_every"] is None:
            values["eval_every"] = 0  # its held-out images would be outside ε: asked only
        scoring_by_default = values["eval_every"] is None
        for name, info in type(self).__pydantic_fields__.items():  # type: ignore[attr-defined]
            extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
            if values[name] is not None:
                continue
            if BY_IMAGE_SIZE in extra:
                values[name] = pick(extra[BY_IMAGE_SIZE], image_size)  # type: ignore[arg-type]
            elif BY_OPTION in extra:
                rule: Any = extra[BY_OPTION]
                value = rule["values"][values[rule["option"]]]
                values[name] = list(value) if isinstance(value, list | tuple) else value
        if scoring_by_default and values["max_steps"] < values["eval_every"]:
            # One evaluation, at the end, could choose nothing and would cost more than
            # such a short run: scoring is on by default only for runs it can serve.
            values["eval_every"] = 0
        if values["keep"] is None:
            values["keep"] = (
                "best" if values["eval_every"] and values["privacy"] is None else "last"
            )
        return type(self)(**self.derive(values))

    def derive(self, values: dict[str, Any]) -> dict[str, Any]:
        """Derivations a table cannot say (override): ``values`` after the tables."""
        return values

    @classmethod
    def saved(cls, values: Mapping[str, Any]) -> dict[str, Any]:
        """A config saved with a model by an earlier version, with the options added since
        set to what that model was built with (override where a new option's default
        differs from the old behaviour), so a saved model rebuilds as it was trained.
        Runs from before scoring existed were not scored and kept their last weights."""
        return {"eval_every": 0, "keep": "last", **values}


def json_numbers(cls: type, data: Any) -> Any:
    """An options class's input with integral floats made ints where a field wants an int
    (construction passes ArgsKwargs, validation inside a request model a dict)."""
    if isinstance(data, ArgsKwargs):
        kwargs = data.kwargs or {}
        return ArgsKwargs(data.args, {k: _integral(cls, k, v) for k, v in kwargs.items()})
    if isinstance(data, dict):
        return {key: _integral(cls, key, value) for key, value in data.items()}
    return data


def _integral(cls: type, key: str, value: Any) -> Any:
    fields = getattr(cls, "__pydantic_fields__", {})
    return integral(value, fields[key].annotation) if key in fields else value


def integral(value: Any, annotation: Any) -> Any:
    """``value`` with integral floats made ints where ``annotation`` wants an int (JSON
    Schema's integers include 25.0; pydantic's strict mode alone would refuse it)."""
    if isinstance(value, float) and value.is_integer() and _takes_int_not_float(annotation):
        return int(value)
    if isinstance(value, list) and (item := _item(annotation)) is not None:
        return [integral(element, item) for element in value]
    return value


def _takes_int_not_float(annotation: Any) -> bool:
    admitted = _types(annotation)
    return int in admitted and float not in admitted


def _types(annotation: Any) -> set[Any]:
    """The base types an annotation admits (through Optional, unions and Annotated)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _types(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return set().union(*(_types(arg) for arg in typing.get_args(annotation)))
    return {origin or annotation}


def _item(annotation: Any) -> Any | None:
    """The item type of a list annotation (through Optional and Annotated), if any."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _item(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        items = [_item(arg) for arg in typing.get_args(annotation)]
        return next((item for item in items if item is not None), None)
    return typing.get_args(annotation)[0] if origin is list else None
