"""/docs and /redoc work without internet: every asset they load is served by the API."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from tests import embedded_api

ASSET = re.compile(r"""<(?:script|link)\b[^>]*?\b(?:src|href)=["']([^"']+)["']""")
CONTENT_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png"}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    home = tmp_path_factory.mktemp("api")
    return TestClient(create_app(embedded_api.settings(home)))


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_page_loads_its_assets_from_the_api_only(client: TestClient, page: str) -> None:
    response = client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assets = ASSET.findall(response.text)
    assert any(a.endswith(".js") for a in assets), assets
    assert all(a.startswith("/") and not a.startswith("//") for a in assets), assets
    assert "http://" not in response.text and "https://" not in response.text
    for url in assets:
        fetched = client.get(url)
        assert fetched.status_code == 200, url
        expected = CONTENT_TYPES[Path(url).suffix]
        assert expected in fetched.headers["content-type"], (url, fetched.headers)
        assert len(fetched.content) > 1000, url


def test_swagger_ui_asks_no_outside_validator(client: TestClient) -> None:
    assert '"validatorUrl": null' in client.get("/docs").text
