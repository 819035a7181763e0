"""Bad input answers 4xx application/problem+json naming the field, and writes nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from core.db import session_scope
from core.jobs.orm import IdempotencyKey, Job, JobEvent, Outbox

pytestmark = pytest.mark.integration

TRAIN = {"kind": "train", "engine": "ddpm", "dataset": "digits", "model_name": "d"}
GEN = {"kind": "generate", "model": "d", "count": 10}

CASES = [
    ("unknown kind", {"kind": "paint", "model": "x"}, 422, "kind"),
    ("missing kind", {"engine": "ddpm"}, 422, "kind"),
    ("unknown engine", {**TRAIN, "engine": "vae"}, 422, "engine"),
    (
        "mistyped gan variant",
        {**TRAIN, "engine": "gan", "config": {"variant": "big"}},
        422,
        "config.variant",
    ),
    ("missing dataset", {k: v for k, v in TRAIN.items() if k != "dataset"}, 422, "dataset"),
    # Not a built-in and no dataset of the tenant's by that name: not found, as a model is.
    ("unknown dataset", {**TRAIN, "dataset": "imagenet"}, 404, "dataset"),
    ("unknown split", {**TRAIN, "dataset": "digits:valid"}, 422, "dataset"),
    ("mistyped max_steps", {**TRAIN, "config": {"max_steps": "many"}}, 422, "config.max_steps"),
    ("negative max_steps", {**TRAIN, "config": {"max_steps": -5}}, 422, "config.max_steps"),
    ("unknown config key", {**TRAIN, "config": {"warp": 9}}, 422, "config.warp"),
    ("unknown top-level field", {**TRAIN, "colour": "red"}, 422, "colour"),
    ("bad model name", {**TRAIN, "model_name": "a b/c"}, 422, "model_name"),
    (
        "keep best unscored",
        {**TRAIN, "config": {"eval_every": 0, "keep": "best"}},
        422,
        "config.keep",
    ),
    ("unknown keep", {**TRAIN, "config": {"keep": "first"}}, 422, "config.keep"),
    (
        "zero patience",
        {**TRAIN, "config": {"early_stop_patience": 0}},
        422,
        "config.early_stop_patience",
    ),
    (
        "patience unscored",
        {**TRAIN, "config": {"eval_every": 0, "early_stop_patience": 3}},
        422,
        "config.early_stop_patience",
    ),
    ("negative eval_every", {**TRAIN, "config": {"eval_every": -1}}, 422, "config.eval_every"),
    (
        "private keep best",
        {**TRAIN, "config": {"keep": "best", "privacy": {"epsilon": 5}}},
        422,
        "config.privacy",
    ),
    (
        "scored on two gpus",
        {**TRAIN, "gpus": 2, "config": {"eval_every": 100}},
        422,
        "config.eval_every",
    ),
    ("zero gpus", {**TRAIN, "gpus": 0}, 422, "gpus"),
    # The test workers have two GPUs at most (SYNTHGEN_MAX_JOB_GPUS=2).
    ("more gpus than any worker has", {**TRAIN, "gpus": 4}, 422, "gpus"),
    ("ebm on two gpus", {**TRAIN, "engine": "ebm", "gpus": 2}, 422, "gpus"),
    ("batch not split over gpus", {**TRAIN, "gpus": 2, "config": {"batch_size": 9}}, 422, "gpus"),
    ("negative count", {**GEN, "count": -1}, 422, "count"),
    ("absurd count", {**GEN, "count": 10**12}, 422, "count"),
    ("mistyped count", {**GEN, "count": "ten"}, 422, "count"),
    ("unknown sampler", {**GEN, "config": {"sampler": "euler"}}, 422, "config.sampler"),
    (
        "eta with a deterministic solver",
        {**GEN, "config": {"sampler": "unipc", "eta": 0.5}},
        422,
        "config.eta",
    ),
    ("unknown precision", {**GEN, "config": {"precision": "fp16"}}, 422, "config.precision"),
    ("bad output format", {**GEN, "output_format": "gif"}, 422, "output_format"),
    ("unknown model", GEN, 404, "model"),
    (
        "unknown metric",
        {"kind": "evaluate", "model": "d", "reference": "digits:test", "metrics": ["beauty"]},
        422,
        "metrics.0",
    ),
    (
        "unknown reference split",
        {"kind": "evaluate", "model": "d", "reference": "digits:holdout"},
        422,
        "reference",
    ),
    (
        "model and source_job",
        {"kind": "evaluate", "model": "d", "source_job": "x", "reference": "digits:test"},
        422,
        "",
    ),
    (
        "unknown source job",
        {"kind": "evaluate", "source_job": "nope", "reference": "digits:test"},
        422,
        "source_job",
    ),
]


def _row_counts(settings) -> tuple[int, ...]:
    with session_scope(settings.database_url) as session:
        return tuple(
            session.scalar(select(func.count()).select_from(table))
            for table in (Job, JobEvent, Outbox, IdempotencyKey)
        )


@pytest.mark.parametrize(("case", "body", "status", "field"), CASES, ids=[c[0] for c in CASES])
def test_bad_job_body_is_a_problem_naming_the_field(settings, tenant, case, body, status, field):
    before = _row_counts(settings)
    response = tenant.post("/v1/jobs", json=body, headers={"Idempotency-Key": f"bad-{case}"})
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == status
    assert problem["title"] and problem["detail"]
    assert "Traceback" not in response.text
    if field:
        names = [p["name"] for p in problem["invalid_params"]]
        assert field in names, names
    assert _row_counts(settings) == before


MALFORMED = [
    (b'{"kind": "train", "engine": ', "line 1, column 29 (char 28)"),
    (b'{\n  "kind": "train",\n  "engine": "ddpm",,\n}', "line 3, column 20 (char 40)"),
]


@pytest.mark.parametrize(("content", "where"), MALFORMED, ids=["truncated", "double comma"])
def test_malformed_json_is_a_problem_naming_body_and_where_it_breaks(
    settings, tenant, content, where
):
    before = _row_counts(settings)
    response = tenant.post(
        "/v1/jobs", content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    (param,) = response.json()["invalid_params"]
    assert param["name"] == "body"
    assert "not valid JSON" in param["reason"] and where in param["reason"], param
    assert _row_counts(settings) == before


@pytest.mark.parametrize(
    ("content", "got"),
    [(b"[]", "an array"), (b'"x"', "a string"), (b"42", "a number"), (b"null", "null")],
)
def test_body_that_is_not_an_object_is_a_problem_naming_body(settings, tenant, content, got):
    response = tenant.post(
        "/v1/jobs", content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["invalid_params"] == [
        {"name": "body", "reason": f"must be a JSON object, got {got}"}
    ]


def test_json_sent_without_its_content_type_says_which_header_to_set(settings, tenant):
    before = _row_counts(settings)
    response = tenant.post(
        "/v1/jobs",
        content=b'{"kind": "generate", "model": "m", "count": 1}',
        headers={"Content-Type": "application/x-www-form-urlencoded"},  # curl -d's default
    )
    assert response.status_code == 422
    (param,) = response.json()["invalid_params"]
    assert param["name"] == "body"
    assert "Content-Type is application/x-www-form-urlencoded" in param["reason"]
    assert "Content-Type: application/json" in param["reason"]
    assert _row_counts(settings) == before


def test_oversized_body_is_413_and_writes_nothing(settings, tenant):
    before = _row_counts(settings)
    body = {**GEN, "labels": [0] * 600_000, "count": 600_000}  # ~1.2 MB of JSON
    response = tenant.post("/v1/jobs", json=body)
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert _row_counts(settings) == before


def test_label_beyond_the_models_classes_is_422(settings, worker, tenant):
    from tests.integration.conftest import TINY_DDPM

    job = tenant.submit({**TRAIN, "dataset": "shapes", "model_name": "few", "config": TINY_DDPM})
    assert tenant.wait(job["id"])["status"] == "succeeded"
    before = _row_counts(settings)
    response = tenant.post("/v1/jobs", json={**GEN, "model": "few", "labels": [0, 99]})
    assert response.status_code == 422
    assert response.json()["invalid_params"][0]["name"] == "labels"
    assert _row_counts(settings) == before


def test_unknown_job_id_is_404(tenant):
    response = tenant.get("/v1/jobs/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_option_of_another_engine_is_422_naming_it(settings, tenant):
    before = _row_counts(settings)
    response = tenant.post("/v1/jobs", json={**TRAIN, "config": {"n_critic": 5}})
    assert response.status_code == 422
    assert response.json()["invalid_params"][0]["name"] == "config.n_critic"
    assert _row_counts(settings) == before
