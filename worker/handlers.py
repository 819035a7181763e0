"""The handler of each job kind, and the schema its request is parsed with: two explicit
tables over :class:`JobKind`. A handler is ``run(ctx) -> Outcome``: ``ctx.request`` is
its kind's request, parsed once by the runner (``REQUESTS``), and the
:class:`~worker.outcome.Outcome` it returns is what the runner stores, records,
registers and ends the job with. Adding a job kind is a schema, a ``run`` over it and a
line in each table.

The runner imports these tables when it runs its first job, not when it is imported.
Every worker process imports the runner (``worker.tasks``: the cpu worker for its
reconciler, retention and webhook tasks, the preview worker too), and the handlers load
torch, the engines and the metrics: ``import worker.tasks`` took 0.9-1.5 s alone and
4.4-5.4 s with every handler (3 runs each, 2-core dev box), seconds added to each
worker's start and restart, most of them for nothing in a process that never runs a job.
A worker pays them once, at its first job. (Per-kind laziness would save a cpu worker
that only validates datasets another ~2.5 s, once; it is not worth a string-keyed or
function-per-kind table.)

Handlers never import one another, nor the runner: what two of them share lives in a
neutral module (worker/sampling.py, worker/versions.py, worker/storage_io.py,
worker/formats/, worker/images.py, worker/outcome.py); the import-linter contract
"handlers-apart" (pyproject.toml) checks the first, "no-cycles" the second (the runner
imports this table, so a handler importing the runner would close a loop), and a test
that every :class:`JobKind` is here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import TypeAdapter

from core.jobs.schemas import EvaluateJobIn, GenerateJobIn, TrainJobIn, Txt2ImgJobIn
from core.jobs.service_requests import ImportModelIn, ValidateDatasetIn
from core.jobs.states import JobKind
from worker import evaluate, generate, model_import, train, txt2img
from worker.context import JobContext
from worker.datasets import validate
from worker.outcome import Outcome

Handler = Callable[[JobContext[Any]], Outcome]

HANDLERS: dict[JobKind, Handler] = {
    JobKind.train: train.run,
    JobKind.generate: generate.run,
    JobKind.evaluate: evaluate.run,
    JobKind.txt2img: txt2img.run,
    JobKind.validate_dataset: validate.run,
    JobKind.import_model: model_import.run,
}

# The submit schemas (core/jobs/schemas.py; a train request is a union over engines), and
# those of the jobs the service makes itself. The stored request is the schema's own
# dump, so it parses as it was accepted, defaults filled in.
REQUESTS: dict[JobKind, TypeAdapter[Any]] = {
    JobKind.train: TypeAdapter(TrainJobIn),
    JobKind.generate: TypeAdapter(GenerateJobIn),
    JobKind.evaluate: TypeAdapter(EvaluateJobIn),
    JobKind.txt2img: TypeAdapter(Txt2ImgJobIn),
    JobKind.validate_dataset: TypeAdapter(ValidateDatasetIn),
    JobKind.import_model: TypeAdapter(ImportModelIn),
}
