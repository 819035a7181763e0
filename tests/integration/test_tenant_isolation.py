"""A tenant never reaches another's jobs, artifacts or models: every route of the API is
walked with the other tenant's ids and answers 404 (or refuses the reference)."""

from __future__ import annotations

import re

import httpx
import pytest
from sqlalchemy import select

from core.artifacts import service as artifacts
from core.datasets import service as datasets
from core.datasets.schemas import DatasetCreate
from core.db import session_scope
from core.imports import service as imports
from core.imports.schemas import ImportCreate
from core.jobs import submission, transitions
from core.jobs.orm import JobEvent
from core.jobs.schemas import parse_job
from core.jobs.states import JobStatus
from core.model_versions import service as model_versions
from core.previews import service as previews
from core.previews.schemas import PreviewIn
from core.storage import from_settings as storage_from_settings
from core.tenants.orm import Tenant
from core.webhooks.orm import WebhookDelivery
from tests.integration.conftest import TINY_DDPM, TenantClient

pytestmark = pytest.mark.integration


@pytest.fixture()
def owner_ids(settings, tenant: TenantClient) -> dict[str, str]:
    """A tenant's succeeded train job with an artifact and a model version, and a
    succeeded generate job, written as the worker would have; a dataset and a model
    import awaiting their uploads."""
    storage = storage_from_settings(settings)
    with session_scope(settings.database_url) as session:
        owner = session.scalar(select(Tenant).where(Tenant.name == tenant.name))
        body = {"kind": "train", "engine": "ddpm", "dataset": "shapes", "model_name": "private",
                "config": TINY_DDPM}  # fmt: skip
        train = submission.create_job(
            session=session, settings=settings, tenant=owner, job_in=parse_job(body)
        )
        transitions.transition(session=session, job_id=train.id, target=JobStatus.running)
        grid = storage.put_bytes(f"jobs/{train.id}/grid.png", b"png")
        artifacts.record(session=session, job_id=train.id, objects=[("grid.png", grid)])
        version = model_versions.register(
            session=session, tenant_id=owner.id, name="private", engine="ddpm",
            dataset="shapes:train", config={}, spec={"num_classes": 5}, metrics={},
            checkpoint_uri=f"jobs/{train.id}/model/", train_job_id=train.id,
        )  # fmt: skip
        transitions.transition(session=session, job_id=train.id, target=JobStatus.succeeded)
        generate = submission.create_job(
            session=session, settings=settings, tenant=owner,
            job_in=parse_job({"kind": "generate", "model": "private", "count": 20}),
        )  # fmt: skip
        transitions.transition(session=session, job_id=generate.id, target=JobStatus.running)
        transitions.transition(session=session, job_id=generate.id, target=JobStatus.succeeded)
        model_versions.set_alias(
            session=session, tenant=owner, name="private", alias="prod", version=1, actor="t"
        )
        preview = previews.create(
            session=session, tenant=owner, ref="private", preview_in=PreviewIn()
        )
        event_id = session.scalar(select(JobEvent.id).where(JobEvent.job_id == train.id))
        delivery = WebhookDelivery(
            job_id=train.id, event_id=event_id, event="completed", url="https://example.test/h"
        )
        session.add(delivery)
        dataset = datasets.create(
            session=session, storage=storage, settings=settings, tenant=owner,
            dataset_in=DatasetCreate(name="private", format="zip"),
        )  # fmt: skip
        model_import, _ = imports.create(
            session=session, storage=storage, settings=settings, tenant=owner,
            import_in=ImportCreate(model_name="imported", format="diffusers"),
        )  # fmt: skip
        session.flush()
        return {
            "dataset_id": dataset.id,
            "import_id": model_import.id,
            "version": "1",
            "alias": "prod",
            "ref": "private",
            "preview_id": preview.id,
            "delivery_id": delivery.id,
            "job_id": train.id,
            "name": "private",
            "version_id": version.id,
            "generate_id": generate.id,
            "key": f"jobs/{train.id}/grid.png",
        }


# Routes the API document leaves out (the local store's download and upload URLs, signed
# instead of keyed).
UNDOCUMENTED = [("GET", "/v1/files/{key}"), ("PUT", "/v1/uploads/{key}")]
# Valid bodies, so that what answers is the ownership check, not validation.
BODIES = {("PUT", "/v1/models/{name}/aliases/{alias}"): {"version": 1}}


def _routes(app) -> list[tuple[str, str]]:
    """Every operation of the API document, and the undocumented routes."""
    paths = app.openapi()["paths"]
    return [(m.upper(), p) for p, item in paths.items() for m in item] + UNDOCUMENTED


def test_every_route_with_another_tenants_ids_answers_404(app_client, make_tenant, owner_ids):
    intruder = make_tenant()
    walked = 0
    for method, path in _routes(app_client.app):
        params = re.findall(r"{(\w+)}", path)
        if not params:
            continue
        assert set(params) <= set(owner_ids), f"teach this test the ids of {path}"
        url = re.sub(r"{(\w+)}", lambda m: owner_ids[m.group(1)], path)
        signed = {"expires": "9999999999", "max_bytes": "100", "signature": "0" * 64}
        query = signed if "{key" in path else {}
        body = BODIES.get((method, path), {})
        response = intruder.request(method, url, params=query, json=body)
        assert response.status_code == 404, (method, path, response.text)
        walked += 1
    assert walked >= 5


def test_listings_show_nothing_of_another_tenant(make_tenant, owner_ids):
    intruder = make_tenant()
    assert intruder.get("/v1/jobs").json()["items"] == []
    assert intruder.get("/v1/models").json() == []
    assert intruder.get("/v1/datasets").json()["items"] == []
    assert intruder.get("/v1/imports").json() == {"items": [], "next_cursor": None}


@pytest.mark.parametrize("ref", ["private", "private:1", "version_id"])
def test_another_tenants_model_cannot_be_generated_from(make_tenant, owner_ids, ref):
    intruder = make_tenant()
    model = owner_ids[ref] if ref == "version_id" else ref
    response = intruder.post("/v1/jobs", json={"kind": "generate", "model": model, "count": 10})
    assert response.status_code == 404
    assert intruder.get("/v1/jobs").json()["items"] == []


def test_another_tenants_generate_job_cannot_be_evaluated(make_tenant, owner_ids):
    intruder = make_tenant()
    response = intruder.post(
        "/v1/jobs",
        json={"kind": "evaluate", "source_job": owner_ids["generate_id"],
              "reference": "shapes:test", "config": {"features": "classifier"}},
    )  # fmt: skip
    assert response.status_code == 422
    assert response.json()["invalid_params"][0]["name"] == "source_job"


def test_artifact_url_is_scoped_to_its_object(tenant: TenantClient, owner_ids):
    items = tenant.get(f"/v1/jobs/{owner_ids['job_id']}/artifacts").json()["items"]
    url = items[0]["url"]
    assert httpx.get(url).content == b"png"
    other = url.replace("grid.png", "model/model.safetensors")
    assert httpx.get(other).status_code == 403
