"""/v1/datasets: create (→ where to upload), complete (→ validation job), read, list, delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from api.deps import DispatcherDep, SessionDep, SettingsDep, StorageDep, TenantDep, base_url
from core.datasets import service as datasets
from core.datasets.schemas import DatasetCreate, DatasetOut, DatasetPage
from core.jobs import submission

router = APIRouter(prefix="/v1/datasets", tags=["datasets"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=DatasetOut)
def create_dataset(
    dataset_in: DatasetCreate,
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    storage: StorageDep,
    tenant: TenantDep,
) -> DatasetOut:
    """Register a dataset and answer where to send its file (``upload``); then POST
    ``complete``. The file is validated by a job on the cpu queue."""
    row = datasets.create(
        session=session, storage=storage, settings=settings, tenant=tenant, dataset_in=dataset_in
    )
    session.commit()
    response.headers["Location"] = f"{base_url(request)}/v1/datasets/{row.id}"
    return datasets.to_out(row, storage=storage, settings=settings, base_url=base_url(request))


@router.get("", response_model=DatasetPage)
def list_datasets(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    storage: StorageDep,
    tenant: TenantDep,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> DatasetPage:
    rows, next_cursor = datasets.list_datasets(
        session=session, tenant=tenant, cursor=cursor, limit=limit
    )
    items = [
        datasets.to_out(r, storage=storage, settings=settings, base_url=base_url(request))
        for r in rows
    ]
    return DatasetPage(items=items, next_cursor=next_cursor)


@router.get("/{dataset_id}", response_model=DatasetOut)
def get_dataset(
    dataset_id: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    storage: StorageDep,
    tenant: TenantDep,
) -> DatasetOut:
    row = datasets.get(session=session, tenant=tenant, dataset_id=dataset_id)
    return datasets.to_out(row, storage=storage, settings=settings, base_url=base_url(request))


@router.post("/{dataset_id}/complete", response_model=DatasetOut)
def complete_dataset(
    dataset_id: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    storage: StorageDep,
    tenant: TenantDep,
    dispatcher: DispatcherDep,
) -> DatasetOut:
    """The file is uploaded: start validating it (status ``validating``)."""
    row, job = datasets.complete(
        session=session, storage=storage, settings=settings, tenant=tenant, dataset_id=dataset_id
    )
    session.commit()
    submission.publish(session=session, settings=settings, job=job, dispatcher=dispatcher)
    return datasets.to_out(row, storage=storage, settings=settings, base_url=base_url(request))


@router.delete("/{dataset_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_dataset(
    dataset_id: str, session: SessionDep, storage: StorageDep, tenant: TenantDep
) -> Response:
    """Delete the dataset and its files (a validation under way is canceled)."""
    datasets.delete(session=session, storage=storage, tenant=tenant, dataset_id=dataset_id)
    session.commit()
    datasets.purge(storage=storage, dataset_id=dataset_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
