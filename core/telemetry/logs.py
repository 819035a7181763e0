"""JSON log lines carrying the request, tenant and job they belong to.

The fields live in one dict per request (api/telemetry.py) or per job (worker/runner.py)
held by a ContextVar. It is a mutable dict rather than a ContextVar per field because
FastAPI runs each sync dependency and handler in its own copy of the context: a value
*set* there would be gone for the next one, while an update to the shared dict is seen
by the whole request, including its access line.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from pythonjsonlogger.core import RESERVED_ATTRS

_fields: ContextVar[dict[str, str] | None] = ContextVar("synthgen_log_fields", default=None)


def start(**fields: str) -> None:
    """Open a fresh set of fields for the current task (an ASGI request runs in its own)."""
    _fields.set(dict(fields))


@contextmanager
def context(**fields: str) -> Iterator[None]:
    """Fields for the lines logged inside the block (one job on a worker)."""
    token = _fields.set(dict(fields))
    try:
        yield
    finally:
        _fields.reset(token)


def bind(**fields: str) -> None:
    """Add fields to the current request's or job's lines (no-op outside one)."""
    current = _fields.get()
    if current is not None:
        current.update(fields)


class ContextFilter(logging.Filter):
    """Stamps each record with the fields of the request or job it was logged in."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in (_fields.get() or {}).items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


def config(level: str | int = "INFO") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` dict: JSON lines on stderr for every logger. uvicorn
    applies it in each of its worker processes; the Celery worker in its setup_logging."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": ContextFilter}},
        "formatters": {
            "json": {
                "()": "pythonjsonlogger.json.JsonFormatter",
                "fmt": "%(levelname)s %(name)s %(message)s",
                "rename_fields": {"levelname": "level", "name": "logger"},
                "timestamp": "time",
                # uvicorn adds an ANSI-coloured copy of its messages for terminals.
                "reserved_attrs": [*RESERVED_ATTRS, "color_message"],
            }
        },
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "json",
                "filters": ["context"],
            }
        },
        "root": {"level": level, "handlers": ["stderr"]},
        # The API writes its own access line, with the request id (api/telemetry.py).
        "loggers": {"uvicorn.access": {"level": "WARNING", "propagate": False}},
    }
