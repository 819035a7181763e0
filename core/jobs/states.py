"""The job state machine: the one place transitions are defined.

    queued → running → succeeded
       │        ├────→ failed
       └────────┴────→ canceled

Two further edges exist for recovery, both taken only by the reconciler or the
runner: ``queued → failed`` (a job that cannot start, e.g. too many lost attempts) and
``running → queued`` (the worker holding it died; the job is re-queued and resumes from
its last checkpoint). Terminal states never change.
"""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    canceled = "canceled"


class JobKind(StrEnum):
    train = "train"
    generate = "generate"
    evaluate = "evaluate"
    txt2img = "txt2img"
    # Made by the service itself (POST /v1/datasets/{id}/complete, POST /v1/imports), never
    # submitted to POST /v1/jobs; listed and cancelable like any other job.
    validate_dataset = "validate_dataset"
    import_model = "import_model"


TERMINAL: frozenset[JobStatus] = frozenset(
    {JobStatus.succeeded, JobStatus.failed, JobStatus.canceled}
)

TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.queued: frozenset({JobStatus.running, JobStatus.canceled, JobStatus.failed}),
    JobStatus.running: frozenset(
        {JobStatus.succeeded, JobStatus.failed, JobStatus.canceled, JobStatus.queued}
    ),
    JobStatus.succeeded: frozenset(),
    JobStatus.failed: frozenset(),
    JobStatus.canceled: frozenset(),
}


def sources_of(target: JobStatus) -> frozenset[JobStatus]:
    """Every status from which ``target`` may be reached."""
    return frozenset(s for s, targets in TRANSITIONS.items() if target in targets)


def can_transition(source: JobStatus, target: JobStatus) -> bool:
    return target in TRANSITIONS[source]
