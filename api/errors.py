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
_UNION_TAGS = {"train", "generate", "evaluate", "txt2img", "ddpm", "gan", "ebm"}


def _field_name(loc: tuple[Any, ...]) -> str:
    # ("body", "generate", "config", "steps") → "config.steps": drop the location and the
    # union tag pydantic inserts for the discriminated union.
    parts = [str(p) for p in loc[1:] if p not in _UNION_TAGS]
    return ".".join(parts) or str(loc[0])


def _reason(err: dict[str, Any]) -> str:
    msg = str(err.get("msg", "invalid"))
    return msg.removeprefix("Value error, ")


_JSON_TYPE_NAMES = {
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}


def _malformed_json(body: Any, pos: Any, error: str) -> str:
    """Where the JSON broke, as an editor shows it: line and column (1-based) and the
    character offset, e.g. "line 1, column 29 (char 28)"."""
    if not isinstance(pos, int) or not isinstance(body, str):
        return f"not valid JSON: {error}"
    line = body.count("\n", 0, pos) + 1
    column = pos - (body.rfind("\n", 0, pos) + 1) + 1
    return f"not valid JSON: {error} at line {line}, column {column} (char {pos})"


def _param(err: dict[str, Any], body: Any) -> dict[str, str]:
    loc = tuple(err.get("loc", ()))
    kind = err.get("type")
    ctx = err.get("ctx") or {}
    if kind == "json_invalid":
        # FastAPI puts the character offset where a field name belongs: ("body", 28).
        error = str(ctx.get("error", "JSON decode error"))
        pos = loc[1] if len(loc) > 1 else None
        return {"name": "body", "reason": _malformed_json(body, pos, error)}
    name = _field_name(loc)
    reason = _reason(err)
    if kind in {"union_tag_invalid", "union_tag_not_found"}:
        name = str(ctx.get("discriminator", "'kind'")).strip("'")
    elif kind == "extra_forbidden":
        reason = "unknown field"
    elif kind == "model_attributes_type":
        got = _JSON_TYPE_NAMES.get(type(err.get("input")), "something else")
        reason = f"must be a JSON object, got {got}"
    elif kind == "missing" and loc == ("body",):
        reason = "the request needs a JSON object as its body"
    return {"name": name, "reason": reason}


async def on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    params = [_param(err, exc.body) for err in exc.errors()]
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
