"""The OpenAPI document, made to say what the API really does so that client generators
(openapi-python-client) and schema fuzzers (schemathesis) can rely on it:

- a discriminator mapping names a schema (``$ref``), never an inline one: pydantic inlines
  the nested ``engine`` union of train jobs there, which generators refuse;
- every error an operation can answer is documented as ``application/problem+json``
  (RFC 9457), with the headers that come with it (Retry-After, WWW-Authenticate);
- the bearer key is declared as a security scheme.

The rules are by route shape (authenticated, with path ids, with a body), so routes added
later are documented the same way without listing them here.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from core.config import Settings
from core.jobs.engine_configs import CONFIGS

PROBLEM_REF = "#/components/schemas/Problem"
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Problem",
    "description": "An RFC 9457 problem; invalid_params names each refused field.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "invalid_params": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "reason"],
                "properties": {"name": {"type": "string"}, "reason": {"type": "string"}},
            },
        },
    },
}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "seconds until a retry can succeed",
        "required": True,
        "schema": {"type": "integer"},
    }
}
ERRORS: dict[int, tuple[str, dict[str, Any] | None]] = {
    400: ("The body could not be read (not UTF-8 text)", None),
    401: (
        "No API key, or not a valid one",
        {"WWW-Authenticate": {"required": True, "schema": {"type": "string"}}},
    ),
    404: ("Not found, or not this tenant's", None),
    409: ("Conflicts with the resource's state or a request in flight", None),
    413: ("The request body is over the size limit", None),
    422: ("Invalid request: invalid_params names each field", None),
    429: ("A tenant quota or the key's rate limit is spent", _RETRY_AFTER),
    503: ("A backing service is unavailable; retry after the given time", _RETRY_AFTER),
}
BODY_METHODS = {"post", "put", "patch"}


def operation_id(route: APIRoute) -> str:
    """The handler's name (``submit_job``): what a generated client's functions are called."""
    return route.name


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            name_inline_mappings(schema)
            document_limits(schema, app.state.settings)
            document_errors(schema)
            add_links(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _integer_branch(prop: dict[str, Any]) -> dict[str, Any]:
    """The integer schema of a field declared ``int | None`` (or the field itself)."""
    for branch in prop.get("anyOf", []):
        if branch.get("type") == "integer":
            return dict(branch)
    return prop


def document_limits(schema: dict[str, Any], settings: Settings) -> None:
    """What the server enforces beyond the models' static bounds, so a schema-valid
    request is one the server accepts (issue 27): the configured upload limits on the
    declared ``size`` of datasets and imports, each engine's image sizes, and the event
    stream described in OpenAPI 3.1 terms (FastAPI writes 3.2's ``itemSchema`` there,
    which 3.1 validators refuse)."""
    components = schema.get("components", {}).get("schemas", {})
    for name, limit in (
        ("DatasetCreate", settings.dataset_max_upload_bytes),
        ("ImportCreate", settings.import_max_bytes),
    ):
        size = components.get(name, {}).get("properties", {}).get("size")
        if size is not None:
            integer = _integer_branch(size)
            integer["maximum"] = limit
            size["anyOf"] = [integer, {"type": "null"}]
            size["description"] = f"{size.get('description', '')} (at most {limit} bytes)"
    for options in CONFIGS.values():
        field = components.get(options.__name__, {}).get("properties", {}).get("image_size")
        if field is None or not options.IMAGE_SIZES:
            continue
        sizes = list(options.IMAGE_SIZES)
        field["anyOf"] = [{"type": "integer", "enum": sizes}, {"type": "null"}]
        field["description"] = (
            f"{field.get('description', '')}. The {options.ENGINE} engine takes {sizes}"
        )
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            for response in operation.get("responses", {}).values():
                stream = response.get("content", {}).get("text/event-stream")
                if stream is not None and "itemSchema" in stream:
                    # One event's fields (id, event, data, retry) under 3.1's ``schema``:
                    # what schemathesis checks each event of the stream against.
                    stream["schema"] = {
                        **stream.pop("itemSchema"),
                        "description": "each server-sent event: id, event (its type) and "
                        "data (the event as JSON)",
                    }


def name_inline_mappings(schema: dict[str, Any]) -> None:
    """Move every inline schema of a discriminator mapping into components and point the
    mapping (and the oneOf member) at it by ``$ref``."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})

    def visit(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                visit(item)
            return
        if not isinstance(node, dict):
            return
        mapping = node.get("discriminator", {}).get("mapping", {})
        for tag, target in list(mapping.items()):
            if isinstance(target, dict):
                name = f"{tag.capitalize()}{str(node.get('title', 'Union')).replace(' ', '')}"
                components[name] = target
                ref = f"#/components/schemas/{name}"
                mapping[tag] = ref
                node["oneOf"] = [{"$ref": ref} if m == target else m for m in node["oneOf"]]
        for value in node.values():
            visit(value)

    visit(schema.get("paths", {}))


def _problem(description: str, headers: dict[str, Any] | None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/problem+json": {"schema": {"$ref": PROBLEM_REF}}},
    }
    if headers:
        response["headers"] = headers
    return response


def _statuses(path: str, method: str, operation: dict[str, Any]) -> set[int]:
    params = operation.get("parameters", [])
    has_body = "requestBody" in operation
    codes: set[int] = set()
    if path.startswith("/v1"):
        codes |= {401, 429, 503}
        if any(p.get("in") == "path" for p in params) or has_body:
            codes.add(404)  # an id in the path, or a model / job reference in the body
        if method == "post":
            codes.add(409)
    if params or has_body:
        codes.add(422)
    if has_body or method in BODY_METHODS:
        codes |= {400, 413}
    if path == "/readyz":
        codes.add(503)
    return codes


def document_errors(schema: dict[str, Any]) -> None:
    components = schema.setdefault("components", {})
    components.setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    for unused in ("HTTPValidationError", "ValidationError"):
        components["schemas"].pop(unused, None)
    components["securitySchemes"] = {
        "bearerAuth": {"type": "http", "scheme": "bearer", "description": "an API key"}
    }
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            if path.startswith("/v1"):
                operation["security"] = [{"bearerAuth": []}]
            responses = operation.setdefault("responses", {})
            for code in sorted(_statuses(path, method, operation)):
                description, headers = ERRORS[code]
                if path == "/readyz":
                    headers = None  # not ready: the body's checks say what is missing
                responses[str(code)] = _problem(description, headers)
            if path == "/v1/jobs" and method == "post":
                responses["201"]["headers"] = {
                    "Location": {
                        "description": "the new job's URL (absent on an idempotent replay)",
                        "schema": {"type": "string"},
                    }
                }


# Where an answer's fields feed another operation (OpenAPI links): what a client follows
# after submitting, and what a stateful fuzzer chains.
LINKS: dict[tuple[str, str, str], dict[str, tuple[str, str]]] = {
    ("/v1/jobs", "post", "201"): {
        "GetJob": ("get_job", "$response.body#/id"),
        "CancelJob": ("cancel_job", "$response.body#/id"),
        "ListArtifacts": ("list_artifacts", "$response.body#/id"),
    },
}
LINK_PARAMETER = {"get_job": "job_id", "cancel_job": "job_id", "list_artifacts": "job_id"}


def add_links(schema: dict[str, Any]) -> None:
    paths = schema.get("paths", {})
    for (path, method, status), links in LINKS.items():
        response = paths.get(path, {}).get(method, {}).get("responses", {}).get(status)
        if response is None:
            continue
        response["links"] = {
            name: {"operationId": op, "parameters": {LINK_PARAMETER[op]: expression}}
            for name, (op, expression) in links.items()
        }
