"""The one place errors become RFC 9457 problem+json responses. No stack trace leaves here."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from core import catalog
from core.errors import SynthgenError

log = logging.getLogger("synthgen.api")
PROBLEM = "application/problem+json"
DATABASE_RETRY_S = 5


def problem(
    status: int,
    title: str,
    detail: str,
    request: Request,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = {
        "type": f"https://synthgen.dev/problems/{title.lower().replace(' ', '-')}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        **extra,
    }
    headers = dict(headers or {})
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


# Tags of the discriminated unions (kind, then engine for train jobs) that pydantic puts
# into error locations; users know the field, not the union branch.
_UNION_TAGS = {"train", "generate", "evaluate", "txt2img", *catalog.ENGINES}


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


def _param(err: dict[str, Any], body: Any, content_type: str = "") -> dict[str, str]:
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
    elif kind in {"extra_forbidden", "unexpected_keyword_argument"}:
        reason = "unknown field"
    elif kind in {"model_attributes_type", "dataclass_type"}:
        got = _JSON_TYPE_NAMES.get(type(err.get("input")), "something else")
        reason = f"must be a JSON object, got {got}"
        if loc == ("body",) and "json" not in content_type:
            # curl -d sends a form's Content-Type: the body was never read as JSON.
            reason += (
                f" (the request's Content-Type is {content_type or 'missing'}; send "
                "the JSON body with Content-Type: application/json)"
            )
    elif kind == "missing" and loc == ("body",):
        reason = "the request needs a JSON object as its body"
    return {"name": name, "reason": reason}


async def on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    params = [_param(err, exc.body, content_type) for err in exc.errors()]
    detail = "; ".join(f"{p['name']}: {p['reason']}" for p in params[:5])
    return problem(422, "Invalid request", detail, request, invalid_params=params)


async def on_domain_error(request: Request, exc: SynthgenError) -> JSONResponse:
    extra: dict[str, Any] = {}
    if exc.field:
        extra["invalid_params"] = [{"name": exc.field, "reason": exc.message}]
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
    return problem(exc.status_hint, exc.title, exc.message, request, headers=headers, **extra)


async def on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    titles = {404: "Not found", 405: "Method not allowed", 413: "Request too large"}
    title = titles.get(exc.status_code, "Error")
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        # Allow lists every method of the resource (RFC 9110, 15.5.6); Starlette names
        # only those of the first route whose path matched.
        headers["Allow"] = ", ".join(_allowed_methods(request))
    return problem(exc.status_code, title, str(exc.detail), request, headers=headers)


def _allowed_methods(request: Request) -> list[str]:
    allowed = []
    for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"):
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] == Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return allowed


async def on_out_of_range(request: Request, exc: DataError) -> JSONResponse:
    # A value the schema let through but the database cannot hold (a number past its
    # column's range): the request's fault, not the server's.
    log.warning("value out of range on %s %s: %s", request.method, request.url.path, exc.orig)
    return problem(
        422, "Invalid request", "a value in the request is out of the range it may take", request
    )


async def on_database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    # A lost connection, a database restarting, an exhausted pool: the request can be
    # retried as it is once the database answers (SQLAlchemy replaces dead connections).
    log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
    return problem(
        503,
        "Service unavailable",
        "the database is not reachable right now; retry shortly",
        request,
        headers={"Retry-After": str(DATABASE_RETRY_S)},
    )


async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem(500, "Internal error", "An unexpected error occurred; it was logged.", request)


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, on_validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(SynthgenError, on_domain_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, on_http_error)  # type: ignore[arg-type]
    app.add_exception_handler(DataError, on_out_of_range)  # type: ignore[arg-type]
    for unavailable in (OperationalError, InterfaceError, PoolTimeout):
        app.add_exception_handler(unavailable, on_database_unavailable)
    app.add_exception_handler(Exception, on_unexpected)
