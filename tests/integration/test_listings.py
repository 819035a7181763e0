"""Complete listings: every list endpoint returns everything, or pages with a cursor that
walks to the end with no item lost or repeated."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select, update

from core.artifacts import service as artifacts
from core.datasets.orm import Dataset
from core.db import session_scope, utcnow
from core.imports.orm import ModelImport
from core.jobs import submission, transitions
from core.jobs.orm import Job
from core.jobs.schemas import parse_job
from core.jobs.states import JobStatus
from core.model_versions import service as model_versions
from core.storage import StoredObject
from core.tenants.orm import Tenant
from tests.integration.conftest import TenantClient

pytestmark = pytest.mark.integration

TRAIN = {"kind": "train", "engine": "ddpm", "dataset": "shapes", "model_name": "m"}


def _owner(session: Any, tenant: TenantClient) -> Tenant:
    owner = session.scalar(select(Tenant).where(Tenant.name == tenant.name))
    assert owner is not None
    return owner


def _walk(tenant: TenantClient, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every item of a cursor-paged listing, following next_cursor to the end."""
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(1000):
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = tenant.get(path, params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= params["limit"]
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items
        assert page["items"], "a page with a next_cursor must not be empty"
    raise AssertionError("the cursor never reached the end")


def _queued_jobs(settings: Any, tenant: TenantClient, n: int) -> list[str]:
    with session_scope(settings.database_url) as session:
        owner = _owner(session, tenant)
        return [
            submission.create_job(
                session=session, settings=settings, tenant=owner, job_in=parse_job(TRAIN)
            ).id
            for _ in range(n)
        ]


@pytest.fixture(autouse=True)
def _no_leftover_work(settings, tenant):
    """These jobs exist only to be listed: cancel what is still queued afterwards, or the
    reconciler would publish them and the shared worker would train them all before the
    jobs of later tests."""
    yield
    with session_scope(settings.database_url) as session:
        owner = _owner(session, tenant)
        queued = session.scalars(
            select(Job.id).where(Job.tenant_id == owner.id, Job.status == JobStatus.queued)
        ).all()
        for job_id in queued:
            transitions.transition(session=session, job_id=job_id, target=JobStatus.canceled)


@pytest.mark.parametrize("limit", [1, 2, 3, 7, 8])
def test_job_list_pages_walk_to_the_end_through_equal_timestamps(settings, tenant, limit):
    ids = _queued_jobs(settings, tenant, 7)
    with session_scope(settings.database_url) as session:
        # Four jobs created in the same instant: the cursor must break the tie by id.
        session.execute(update(Job).where(Job.id.in_(ids[2:6])).values(created_at=utcnow()))
        expected = list(
            session.scalars(
                select(Job.id).where(Job.id.in_(ids)).order_by(Job.created_at.desc(), Job.id.desc())
            )
        )
    seen = [j["id"] for j in _walk(tenant, "/v1/jobs", limit=limit)]
    assert seen == expected


def test_job_list_pages_with_a_filter_walk_to_the_end(settings, tenant):
    ids = _queued_jobs(settings, tenant, 5)
    for job_id in ids[::2]:
        assert tenant.post(f"/v1/jobs/{job_id}/cancel").status_code == 200
    seen = [j["id"] for j in _walk(tenant, "/v1/jobs", limit=1, status="canceled")]
    assert seen == list(reversed(ids[::2]))


@pytest.mark.parametrize("limit", [1, 4, 5, 10, 11])
def test_artifact_pages_walk_to_the_end_with_nothing_lost_or_repeated(settings, tenant, limit):
    (job_id,) = _queued_jobs(settings, tenant, 1)
    names = ["grid.png", "labels.csv", "manifest.csv"] + [f"images/{i:06d}.png" for i in range(7)]
    with session_scope(settings.database_url) as session:
        artifacts.record(
            session=session,
            job_id=job_id,
            objects=[(n, StoredObject(f"jobs/{job_id}/{n}", 10, "image/png")) for n in names],
        )
    seen = [a["name"] for a in _walk(tenant, f"/v1/jobs/{job_id}/artifacts", limit=limit)]
    assert sorted(seen) == sorted(names)
    assert len(seen) == len(set(seen))


def test_model_lists_return_every_model_and_every_version(settings, tenant):
    with session_scope(settings.database_url) as session:
        owner = _owner(session, tenant)
        for name, versions in (("a", 3), ("b", 1), ("c", 2)):
            for _ in range(versions):
                model_versions.register(
                    session=session,
                    tenant_id=owner.id,
                    name=name,
                    engine="ddpm",
                    dataset="shapes:train",
                    config={},
                    spec={},
                    metrics={},
                    checkpoint_uri=f"jobs/x/{name}/",
                    train_job_id=None,
                )
    models = tenant.get("/v1/models").json()
    assert [(m["name"], m["versions"], m["latest_version"]["version"]) for m in models] == [
        ("a", 3, 3),
        ("b", 1, 1),
        ("c", 2, 2),
    ]
    assert [v["version"] for v in tenant.get("/v1/models/a/versions").json()] == [3, 2, 1]


@pytest.mark.parametrize(
    ("path", "body", "model"),
    [
        ("/v1/imports", {"model_name": "listed", "format": "synthgen"}, "ModelImport"),
        ("/v1/datasets", {"name": "listed", "format": "zip"}, "Dataset"),
    ],
)
def test_import_and_dataset_lists_walk_to_the_end_through_equal_timestamps(
    settings, tenant, path, body, model
):
    table = {"ModelImport": ModelImport, "Dataset": Dataset}[model]
    before = {item["id"] for item in _walk(tenant, path, limit=200)}
    created = []
    for i in range(5):  # more than a page of 2, fewer than the old fixed cap
        # Dataset names are unique per tenant (issue 31); an import's model name need not be.
        named = {**body, "name": f"{body['name']}-{i}"} if "name" in body else body
        response = tenant.post(path, json=named)
        assert response.status_code == 201, response.text
        created.append(response.json()["id"])
    with session_scope(settings.database_url) as session:
        # Three created in the same instant: the cursor must break the tie by id.
        session.execute(update(table).where(table.id.in_(created[1:4])).values(created_at=utcnow()))
    seen = [item["id"] for item in _walk(tenant, path, limit=2)]
    assert len(seen) == len(set(seen)), "an item was listed twice"
    assert set(seen) == before | set(created)
    mine = [i for i in seen if i in created]
    assert mine[0] in created[1:4]  # the three of the latest instant come first
