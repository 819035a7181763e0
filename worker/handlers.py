"""The handler of each job kind: an explicit table of callables ``run(ctx)``.

The runner imports this table when it runs its first job, not when it is imported.
Every worker process imports the runner (``worker.tasks``: the cpu worker for its
reconciler, retention and webhook tasks, the preview worker too), and the table loads
torch, the engines and the metrics: ``import worker.tasks`` took 0.9-1.5 s alone and
4.4-5.4 s with every handler (3 runs each, 2-core dev box), seconds added to each
worker's start and restart, most of them for nothing in a process that never runs a job.
A worker pays them once, at its first job. (Per-kind laziness would save a cpu worker
that only validates datasets another ~2.5 s, once; it is not worth a string-keyed or
function-per-kind table.)

Handlers never import one another: what two of them share lives in a neutral module
(worker/sampling.py, worker/versions.py, worker/storage_io.py, worker/formats/,
worker/images.py); the import-linter contract "handlers-apart" (pyproject.toml) checks that,
and a test that every :class:`JobKind` is here.
"""

from __future__ import annotations

from collections.abc import Callable

from core.jobs.states import JobKind
from worker import evaluate, generate, model_import, train, txt2img
from worker.context import JobContext
from worker.datasets import validate

Handler = Callable[[JobContext], None]

HANDLERS: dict[JobKind, Handler] = {
    JobKind.train: train.run,
    JobKind.generate: generate.run,
    JobKind.evaluate: evaluate.run,
    JobKind.txt2img: txt2img.run,
    JobKind.validate_dataset: validate.run,
    JobKind.import_model: model_import.run,
}
