"""The handler of each job kind: an explicit table of callables ``run(ctx)``.

Each entry imports its module when a job of that kind runs, not when this table is
imported. Every worker process imports the runner (``worker.tasks``): the cpu worker for
its reconciler, retention and webhook tasks and the preview worker too, and most of them
never run most kinds. Importing every handler up front would load torch, the engines and
the metrics into each of them: ``import worker.tasks`` took 0.9-1.5 s with this table
and 4.4-5.4 s with the handlers imported eagerly (3 runs each, on the 2-core dev box),
seconds added to every worker's start and to every restart after a crash. The entries
are still plain functions, so a type checker follows each import, and a test checks
that every :class:`JobKind` has one and that importing the runner loads no handler.

Handlers never import one another: what two of them share lives in a neutral module
(worker/sampling.py, worker/versions.py, worker/storage_io.py, worker/formats/,
worker/images.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from core.jobs.states import JobKind

if TYPE_CHECKING:
    from worker.runner import JobContext

Handler = Callable[["JobContext"], None]


def train(ctx: JobContext) -> None:
    from worker.train import run

    run(ctx)


def generate(ctx: JobContext) -> None:
    from worker.generate import run

    run(ctx)


def evaluate(ctx: JobContext) -> None:
    from worker.evaluate import run

    run(ctx)


def txt2img(ctx: JobContext) -> None:
    from worker.txt2img import run

    run(ctx)


def validate_dataset(ctx: JobContext) -> None:
    from worker.datasets.validate import run

    run(ctx)


def import_model(ctx: JobContext) -> None:
    from worker.model_import import run

    run(ctx)


HANDLERS: dict[JobKind, Handler] = {
    JobKind.train: train,
    JobKind.generate: generate,
    JobKind.evaluate: evaluate,
    JobKind.txt2img: txt2img,
    JobKind.validate_dataset: validate_dataset,
    JobKind.import_model: import_model,
}
