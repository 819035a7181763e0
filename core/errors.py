"""Domain errors. Raised in core and the worker; mapped to HTTP once, in api/errors.py.

Two questions, two bases: :class:`SynthgenError` says how the API answers (status, title,
field) and that ``message`` is safe to show; :class:`errors.UserError` says it is
the user's to fix. Most domain errors are both; :class:`StorageError` is an outage, not
a mistake of the user's, so a job that hits one is not blamed on them.
"""

from __future__ import annotations

from errors import UserError


class SynthgenError(Exception):
    """Base of every error the API maps to a problem response; ``message`` is safe to show."""

    status_hint = 500
    title = "Internal error"

    def __init__(
        self, message: str, *, field: str | None = None, retry_after: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.retry_after = retry_after  # seconds, sent as Retry-After


class NotFound(SynthgenError, UserError):
    status_hint = 404
    title = "Not found"


class JobNotFound(NotFound):
    title = "Job not found"


class ModelNotFound(NotFound):
    title = "Model not found"


class ArtifactNotFound(NotFound):
    title = "Artifact not found"


class DatasetNotFound(NotFound):
    title = "Dataset not found"


class ImportNotFound(NotFound):
    title = "Import not found"


class InvalidTransition(SynthgenError, UserError):
    status_hint = 409
    title = "Invalid state transition"


class InvalidRequest(SynthgenError, UserError):
    """A well-formed request whose content cannot be served (names ``field``)."""

    status_hint = 422
    title = "Invalid request"


class NameTaken(SynthgenError, UserError):
    """A name that must be unique per tenant (a dataset's) is already used."""

    status_hint = 409
    title = "Name taken"


class UploadMissing(SynthgenError, UserError):
    """``complete`` was called before the bytes arrived."""

    status_hint = 409
    title = "Upload missing"


class IdempotencyConflict(SynthgenError, UserError):
    status_hint = 409
    title = "Request in progress"


class IdempotencyMismatch(SynthgenError, UserError):
    status_hint = 422
    title = "Idempotency key reused with a different request"


class Unauthorized(SynthgenError, UserError):
    status_hint = 401
    title = "Unauthorized"


class StorageError(SynthgenError):
    status_hint = 502
    title = "Object storage error"


class QuotaExceeded(SynthgenError, UserError):
    """A tenant limit (queued jobs, GPU time, storage) or the key's request rate is spent;
    ``retry_after`` says when trying again can succeed."""

    status_hint = 429
    title = "Quota exceeded"


class RateLimited(QuotaExceeded):
    title = "Too many requests"


class PreviewNotFound(NotFound):
    title = "Preview not found"


class PreviewFailed(SynthgenError):
    """The preview worker could not draw the grid; ``message`` says why."""

    title = "Preview failed"
