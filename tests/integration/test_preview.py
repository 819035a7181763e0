"""POST /v1/models/{ref}/preview against real Postgres, Redis, an S3 API and a preview
worker process: the PNG grid, the 202 fallback, the errors, the model cache, and the
priority path past a long train job."""

from __future__ import annotations

import io
import time

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from api.main import create_app
from tests.integration.conftest import TINY_DDPM

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("worker", "preview_worker")]
FAST = {"config": {"steps": 2}}


@pytest.fixture(scope="module")
def owner(make_tenant_module):
    tenant = make_tenant_module()
    job = tenant.submit(
        {"kind": "train", "engine": "ddpm", "dataset": "shapes", "model_name": "pv",
         "config": TINY_DDPM}
    )  # fmt: skip
    assert tenant.wait(job["id"])["status"] == "succeeded"
    return tenant


def grid_of(response: httpx.Response) -> Image.Image:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    return Image.open(io.BytesIO(response.content))


def test_preview_is_a_png_grid_with_one_row_per_class(owner):
    response = owner.post("/v1/models/pv/preview", json={"labels": [1, 3], "count": 6, **FAST})
    image = grid_of(response)
    # 8x8 images, 2 px gutters: 3 columns and 2 rows (classes 1 and 3).
    assert image.size == (3 * (8 + 2) + 2, 2 * (8 + 2) + 2)
    assert response.headers["X-Model-Version"] == "pv:1"


def test_uneven_counts_fill_the_first_rows_and_leave_the_rest_black(owner):
    image = grid_of(
        owner.post("/v1/models/pv/preview", json={"labels": [0, 1], "count": 3, **FAST})
    )
    assert image.size == (2 * 10 + 2, 2 * 10 + 2)
    empty_cell = image.crop((12, 12, 20, 20))  # row 2, column 2
    assert empty_cell.getextrema() == ((0, 0), (0, 0), (0, 0))


def test_without_labels_every_class_gets_a_row(owner):
    image = grid_of(owner.post("/v1/models/pv/preview", json=FAST))
    assert image.size[1] == 5 * 10 + 2  # shapes has 5 classes


def test_scale_draws_each_sample_pixel_as_a_square_of_pixels(owner):
    body = {"labels": [1, 3], "count": 6, "seed": 3, **FAST}
    native = grid_of(owner.post("/v1/models/pv/preview", json=body))
    scaled = grid_of(owner.post("/v1/models/pv/preview", json={**body, "scale": 3}))
    assert scaled.size == (native.width * 3, native.height * 3)
    # Nearest neighbour: the centre of each 3×3 square is the sample's own pixel.
    assert scaled.resize(native.size, Image.Resampling.NEAREST).tobytes() == native.tobytes()


def test_scale_auto_brings_the_grids_short_side_to_at_least_256_px(owner):
    response = owner.post(
        "/v1/models/pv/preview", json={"labels": [1, 3], "count": 6, "scale": "auto", **FAST}
    )
    # 32×22 px unscaled: the smallest whole scale taking 22 px to 256 or more is 12.
    assert grid_of(response).size == (32 * 12, 22 * 12)
    preview = owner.get(f"/v1/previews/{response.headers['X-Preview-Id']}").json()
    assert preview["request"]["scale"] == "auto"


def test_the_second_preview_of_a_version_uses_the_cached_model(owner):
    owner.post("/v1/models/pv:1/preview", json=FAST)
    again = owner.post("/v1/models/pv:1/preview", json=FAST)
    assert again.headers["X-Preview-Cache"] == "hit"


def test_same_seed_same_grid(owner):
    body = {"labels": [2], "count": 4, "seed": 7, **FAST}
    first = owner.post("/v1/models/pv/preview", json=body).content
    assert owner.post("/v1/models/pv/preview", json=body).content == first


@pytest.mark.parametrize(
    ("ref", "body", "status", "field"),
    [
        ("nope", {}, 404, "ref"),
        ("pv", {"count": 65}, 422, "count"),
        ("pv", {"labels": [9]}, 422, "labels"),
        ("pv", {"labels": [1, 1]}, 422, "labels"),
        ("pv", {"labels": [0, 1, 2], "count": 2}, 422, "count"),
        ("pv", {"config": {"step_size": 1.0}}, 422, "config.step_size"),
        ("pv", {"scale": 0}, 422, "scale"),
        ("pv", {"scale": 17}, 422, "scale"),
        ("pv", {"scale": "big"}, 422, "scale"),
        ("pv", {"scale": True}, 422, "scale"),
    ],
)
def test_bad_previews_are_problems_naming_the_field(owner, ref, body, status, field):
    response = owner.post(f"/v1/models/{ref}/preview", json=body)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert [p["name"] for p in response.json()["invalid_params"]] == [field]


def test_another_tenants_model_is_not_found(owner, make_tenant_module):
    stranger = make_tenant_module()
    assert stranger.post("/v1/models/pv/preview", json=FAST).status_code == 404


def test_past_the_bound_the_answer_is_202_with_a_url_that_later_has_the_grid(owner, settings):
    impatient = settings.model_copy(update={"preview_wait_s": 0.0})
    with TestClient(create_app(impatient)) as client:
        response = client.post("/v1/models/pv/preview", json=FAST, headers=owner.headers)
    assert response.status_code == 202
    body = response.json()
    assert response.headers["Location"] == body["urls"]["get"]
    path = httpx.URL(body["urls"]["get"]).path
    deadline = time.monotonic() + 60
    while (preview := owner.get(path).json())["status"] != "succeeded":
        assert preview["status"] in {"queued", "running"} and time.monotonic() < deadline
        time.sleep(0.2)
    png = httpx.get(preview["urls"]["image"]).content
    assert Image.open(io.BytesIO(png)).size[1] == 5 * 10 + 2


def test_a_preview_is_answered_while_a_long_train_job_holds_the_gpu_worker(owner):
    long = owner.submit(
        {"kind": "train", "engine": "ddpm", "dataset": "shapes", "model_name": "busy",
         "config": {**TINY_DDPM, "max_steps": 100_000}}
    )  # fmt: skip
    owner.wait(long["id"], until={"running"})
    try:
        assert owner.post("/v1/models/pv/preview", json=FAST).status_code == 200
        assert owner.get(f"/v1/jobs/{long['id']}").json()["status"] == "running"
    finally:
        owner.post(f"/v1/jobs/{long['id']}/cancel")
