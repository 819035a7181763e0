"""What a user is told when a job (or a preview) fails, and what the operators get.

Three kinds of failure, told apart by type alone:

- the user's mistake, a :class:`errors.UserError` (a config out of range, an
  archive that is not a model): its class name and message, which says how to fix it;
- the worker's resources running out (disk, memory, the object store unreachable): a
  fixed message saying what to change or that retrying helps;
- anything else is a bug, whatever its type (a ValueError from numpy is not the user's
  fault): a generic message carrying an error id, and the traceback logged under that
  id, so a report from the user leads the operators to it.
"""

from __future__ import annotations

import errno
import logging
import uuid
from dataclasses import dataclass

from core.errors import StorageError
from errors import UserError
from models.errors import Stopped

log = logging.getLogger("synthgen.worker")


@dataclass(frozen=True)
class Failure:
    type: str
    message: str
    bug: bool = False

    def as_error(self) -> dict[str, str]:
        """The job's (or preview's) ``error`` field."""
        return {"type": self.type, "message": self.message}


def classify(exc: BaseException) -> Failure | None:
    """The failure ``exc`` is, or None when it is no failure (stopped, shutting down)."""
    if isinstance(exc, Stopped | KeyboardInterrupt | SystemExit):
        return None
    if isinstance(exc, UserError):
        return Failure(type(exc).__name__, str(exc))
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC or "No space left" in str(exc):
        # The string too: torch's writer reports a full disk as a RuntimeError.
        return Failure(
            "DiskFull",
            "the worker's work directory ran out of space while the job wrote its files; "
            "retry the job, or ask the operators for a worker with more disk",
        )
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        # MemoryError on the host; torch.cuda.OutOfMemoryError (named, to need no torch).
        return Failure(
            "OutOfMemory",
            "the worker ran out of memory; lower batch_size or image_size, or use a larger worker",
        )
    if isinstance(exc, StorageError):
        return Failure("StorageError", exc.message)  # written to be shown: says what failed
    error_id = uuid.uuid4().hex[:12]
    log.error(
        "failed unexpectedly (error id %s)", error_id, exc_info=exc, extra={"error_id": error_id}
    )
    return Failure(
        "InternalError",
        f"the worker hit an unexpected error (error id {error_id}); it was logged for "
        "the operators: quote the id when you report it",
        bug=True,
    )
