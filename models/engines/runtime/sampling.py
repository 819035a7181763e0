"""What every sampler shares: checks on the number of images, their labels and the
sample options; batching; the progress and cancel hooks."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pydantic
import torch

from models.engine_options import literal_choices
from models.engine_options.sampling import Refusal, SampleOptions, names
from models.engines.base import EngineError, Stopped, Trained


def sample_labels(
    trained: Trained, conditional: bool, n: int, labels: torch.Tensor | None
) -> torch.Tensor | None:
    """int64 (n,) labels to condition on (classes in turn when None), or None when the
    model is unconditional."""
    if not isinstance(n, int) or n < 1:
        raise EngineError(f"n must be a positive integer, got {n!r}")
    if not conditional:
        if labels is not None:
            raise EngineError("this model was trained with conditional: false; pass labels=None")
        return None
    if labels is None:
        return torch.arange(n) % trained.num_classes
    labels = torch.as_tensor(labels)
    if labels.shape != (n,) or labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise EngineError(
            f"labels must be {n} integers (shape ({n},)), got {labels.dtype} {tuple(labels.shape)}"
        )
    if int(labels.min()) < 0 or int(labels.max()) >= trained.num_classes:
        raise EngineError(
            f"labels must lie in [0, {trained.num_classes}) for classes {trained.class_names}; "
            f"got values from {int(labels.min())} to {int(labels.max())}"
        )
    return labels.to(torch.int64)


CALLER_OPTIONS = ("batch_size", "planned_images", "progress", "should_stop")
"""What ``sample`` takes besides an engine's declared sampling options: the caller's
(a worker's) own, never in a request. ``planned_images`` (how many images the caller
samples in all, a generate job's count) is a hint an engine may use to pick its
arithmetic."""


def check_sample_options(engine: str, opts: Iterable[str], valid: tuple[str, ...]) -> None:
    """EngineError naming the first option of ``opts`` not in ``valid``."""
    unknown = sorted(set(opts) - set(valid))
    if unknown:
        raise EngineError(
            f"unknown {engine} sample option {unknown[0]!r}; valid options are {list(valid)}"
        )


def check_declared(cls: type[SampleOptions], opts: Mapping[str, Any]) -> None:
    """The declared options of ``opts`` checked by their class (:mod:`models.engine_options`),
    as the API checks them at submit; a refusal is an EngineError naming the option."""
    declared = set(names(cls))
    try:
        cls(**{key: value for key, value in opts.items() if key in declared})
    except pydantic.ValidationError as exc:
        raise EngineError(option_error(cls, exc)) from None


def option_error(cls: type[SampleOptions], exc: pydantic.ValidationError) -> str:
    """The first refusal as "option reason", values shown as Python reprs."""
    error = exc.errors()[0]
    key = ".".join(str(part) for part in error["loc"])
    value, ctx = error["input"], error.get("ctx", {})
    if isinstance(ctx.get("error"), Refusal):
        return f"{key} {ctx['error'].quoted()}"
    if error["type"] == "literal_error":
        choices = literal_choices(cls.__pydantic_fields__[key].annotation)  # type: ignore[attr-defined]
        return f"{key} must be one of {list(choices)}, got {value!r}"
    if error["type"] == "greater_than_equal" and ctx.get("ge") == 1 and isinstance(value, int):
        return f"{key} must be a positive integer, got {value!r}"
    return f"{key}: {error['msg']}, got {value!r}"


@dataclass(frozen=True)
class Draw:
    """What one ``sample`` call asks of an engine's ``draw``: ``n`` images, ``labels``
    int64 (n,) already checked (None for an unconditional model), the ``seed``, and
    ``opts`` holding only names in the engine's ``sample_options``."""

    n: int
    labels: torch.Tensor | None
    seed: int
    opts: Mapping[str, Any]


class SampleProgress:
    """The ``progress(done, total)`` and ``should_stop()`` sample options, either absent.

    ``unit`` names what ``total`` counts ("steps", "batches") in the Stopped message.
    """

    def __init__(self, opts: Mapping[str, Any], total: int, unit: str) -> None:
        self.progress: Callable[[int, int], None] | None = opts.get("progress")
        self.should_stop: Callable[[], bool] | None = opts.get("should_stop")
        self.total, self.unit, self.done = total, unit, 0

    def check_stop(self) -> None:
        """:class:`Stopped` when ``should_stop()`` turned true."""
        if self.should_stop is not None and self.should_stop():
            raise Stopped(f"sampling stopped after {self.done} of {self.total} {self.unit}")

    def tick(self) -> None:
        """One more unit done: ``progress(done, total)``."""
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.total)


def iter_batches(n: int, batch_size: int) -> Iterator[slice]:
    """Slices covering ``range(n)`` in chunks of at most ``batch_size``."""
    for start in range(0, n, batch_size):
        yield slice(start, min(n, start + batch_size))


def check_positive_int(name: str, value: Any) -> None:
    """EngineError naming the sample option ``name`` unless ``value`` is an int >= 1."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise EngineError(f"{name} must be a positive integer, got {value!r}")
