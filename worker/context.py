"""What a handler gets from the runner: the job, its parsed request, its work directory,
progress and cancel checks, and the job's place in storage.

Handlers import this module, never worker/runner.py: the runner imports the handler table
(worker/handlers.py), so the context lives below both and no import goes in a loop. A
handler ends by returning an :class:`~worker.outcome.Outcome`; the runner ends the job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar, cast

from core.artifacts import service as artifacts
from core.config import Settings
from core.jobs import events, transitions
from core.jobs.orm import Job
from core.storage import Storage, StoredObject
from worker.progress import CancelCheck, JobProgress

RequestT = TypeVar("RequestT")


@dataclass
class JobContext(Generic[RequestT]):
    settings: Settings
    storage: Storage
    job: Job
    workdir: Path
    progress: JobProgress
    should_stop: CancelCheck
    # The uploaded datasets this job has read, by id (worker/datasets/load.py): a job
    # reads each dataset's row once, however many of its facts it needs.
    datasets: dict[str, Any] = field(default_factory=dict)
    # The job's request, parsed once by the runner with its kind's schema
    # (worker/handlers.py REQUESTS). None only in a context built by hand (tests).
    request: RequestT = field(default=cast(Any, None))
    # Folders outside the job's own that it fills and that go when it fails (a dataset's
    # upload and validated data): deleted by the runner with the job's own outputs.
    owned: list[str] = field(default_factory=list)

    @property
    def prefix(self) -> str:
        return artifacts.prefix_of(self.job.id)

    def key(self, name: str) -> str:
        """The storage key of the job's file ``name`` (``checkpoint/step``)."""
        return artifacts.key_of(self.job.id, name)

    def put_bytes(self, name: str, data: bytes, content_type: str | None = None) -> StoredObject:
        """Write the job's file ``name`` now (while running: a checkpoint, weights)."""
        return self.storage.put_bytes(self.key(name), data, content_type)

    def put_file(self, name: str, path: Path, content_type: str | None = None) -> StoredObject:
        return self.storage.put_file(self.key(name), path, content_type)

    def delete_on_failure(self, *prefixes: str) -> None:
        """Have the runner delete ``prefixes`` when the job's run raises (it failed, was
        canceled mid-step, or its registration was refused); not when the worker's warm
        shutdown preempted it, nor on the KeyboardInterrupt or SystemExit of a worker
        dying: either way the job runs again and needs them."""
        self.owned.extend(prefixes)

    def output(self, **what: object) -> None:
        """Emit an ``output`` event saying what was just written (while still running)."""
        with events.session_scope(self.settings) as session:
            if transitions.heartbeat(session=session, job_id=self.job.id):
                events.record(
                    session=session, job_id=self.job.id, type=events.EventType.output, output=what
                )
