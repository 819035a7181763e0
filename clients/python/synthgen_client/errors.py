"""The errors the SDK raises: each ``str()`` is one line a person can act on.

A module of their own, below the client and the event stream that both raise them.
"""

from __future__ import annotations

from synthgen_client.answers import Json


class SynthgenClientError(Exception):
    """Base of the errors this client raises; ``str()`` is one line a person can act on."""


class ApiError(SynthgenClientError):
    """The API answered with an error (problem+json): ``status``, ``problem``."""

    def __init__(self, problem: Json, status: int) -> None:
        self.problem = problem
        self.status = status
        params = problem.get("invalid_params") or []
        fields = "; ".join(_param_text(p) for p in params[:5])
        detail = fields or problem.get("detail") or ""
        super().__init__(f"{status} {problem.get('title', '')}: {detail}".rstrip(": "))


class NetworkError(SynthgenClientError):
    """The API could not be reached (refused, timed out, name not found)."""


class IncompleteDownload(SynthgenClientError):
    """What was saved does not match the artifact listing (count or sizes)."""

    def __init__(self, message: str, *, missing: list[str]) -> None:
        super().__init__(message)
        self.missing = missing


def _param_text(param: Json) -> str:
    name, reason = str(param.get("name")), str(param.get("reason"))
    return reason if reason.startswith(f"{name}:") else f"{name}: {reason}"
