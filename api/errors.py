"""The one place errors become RFC 9457 problem+json responses. No stack trace leaves here."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.errors import SynthgenError

log = logging.getLogger("synthgen.api")
PROBLEM = "application/problem+json"


def problem(status: int, title: str, detail: str, request: Request, **extra: Any) -> JSONResponse:
    body = {
        "type": f"https://synthgen.dev/problems/{title.lower().replace(' ', '-')}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        **extra,
    }
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


# Tags of the discriminated unions (kind, then engine for train jobs) that pydantic puts
# into error locations; users know the field, not the union branch.
_UNION_TAGS = {"train", "generate", "evaluate", "ddpm", "gan", "ebm"}


def _field_name(loc: tuple[Any, ...]) -> str:
    # ("body", "generate", "config", "steps") → "config.steps": drop the location and the
    # union tag pydantic inserts for the discriminated union.
    parts = [str(p) for p in loc[1:] if p not in _UNION_TAGS]
    return ".".join(parts) or str(loc[0])


def _reason(err: dict[str, Any]) -> str:
    msg = str(err.get("msg", "invalid"))
    return msg.removeprefix("Value error, ")


async def on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    params = []
    for err in exc.errors():
        loc = tuple(err.get("loc", ()))
        name = _field_name(loc)
        if err.get("type") in {"union_tag_invalid", "union_tag_not_found"}:
            name = str(err.get("ctx", {}).get("discriminator", "'kind'")).strip("'")
        reason = _reason(err)
        if err.get("type") == "extra_forbidden":
            reason = "unknown field"
        params.append({"name": name, "reason": reason})
    detail = "; ".join(f"{p['name']}: {p['reason']}" for p in params[:5])
    return problem(422, "Invalid request", detail, request, invalid_params=params)


async def on_domain_error(request: Request, exc: SynthgenError) -> JSONResponse:
    extra: dict[str, Any] = {}
    if exc.field:
        extra["invalid_params"] = [{"name": exc.field, "reason": exc.message}]
    return problem(exc.status_hint, exc.title, exc.message, request, **extra)


async def on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    titles = {404: "Not found", 405: "Method not allowed", 413: "Request too large"}
    return problem(exc.status_code, titles.get(exc.status_code, "Error"), str(exc.detail), request)


async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem(500, "Internal error", "An unexpected error occurred; it was logged.", request)


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, on_validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(SynthgenError, on_domain_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, on_http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, on_unexpected)
