"""The served OpenAPI document is valid OpenAPI 3.1 and says what the server enforces: a
request the document allows is one the server's checks allow (issue 27)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from core.jobs.engine_configs import CONFIGS
from tests import embedded_api


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("api")
    settings = embedded_api.settings(
        home,
        dataset_max_upload_bytes=123_456,
        import_max_bytes=654_321,
    )
    response = TestClient(create_app(settings)).get("/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def _schema(document: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = document["components"]["schemas"][name]
    return found


def test_the_served_document_passes_openapi_spec_validator(document):
    from openapi_spec_validator import validate

    assert document["openapi"].startswith("3.1")
    validate(document)


@pytest.mark.parametrize(
    ("schema", "limit"), [("DatasetCreate", 123_456), ("ImportCreate", 654_321)]
)
def test_declared_upload_size_has_the_configured_maximum(document, schema, limit):
    size = _schema(document, schema)["properties"]["size"]
    integer = next(b for b in size["anyOf"] if b.get("type") == "integer")
    assert integer["maximum"] == limit
    assert integer["minimum"] == 1


@pytest.mark.parametrize("engine", sorted(CONFIGS))
def test_each_engine_lists_the_image_sizes_it_takes(document, engine):
    options = CONFIGS[engine]
    field = _schema(document, options.__name__)["properties"]["image_size"]
    integer = next(b for b in field["anyOf"] if b.get("type") == "integer")
    assert integer["enum"] == list(options.IMAGE_SIZES)
    # The server takes every listed size and refuses one the list leaves out.
    for size in options.IMAGE_SIZES:
        assert options(image_size=size).image_size == size
    unlisted = next(s for s in range(4, 513) if s not in options.IMAGE_SIZES)
    with pytest.raises(ValueError, match="not supported"):
        options(image_size=unlisted)


def test_the_event_stream_is_described_without_openapi_32_keywords(document):
    content = document["paths"]["/v1/jobs/{job_id}/events"]["get"]["responses"]["200"]["content"]
    stream = content["text/event-stream"]
    assert "itemSchema" not in stream
    assert set(stream["schema"]["properties"]) == {"id", "event", "data", "retry"}
