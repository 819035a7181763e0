"""Request dependencies as Annotated aliases."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from core.config import Settings
from core.db import session_factory
from core.errors import Unauthorized
from core.storage import Storage
from core.tenants import service as tenants
from core.tenants.orm import Tenant


def get_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_session(settings: SettingsDep) -> Iterator[Session]:
    session = session_factory(settings.database_url)()
    try:
        yield session
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(get_session)]


def get_storage(request: Request) -> Storage:
    return request.app.state.storage  # type: ignore[no-any-return]


StorageDep = Annotated[Storage, Depends(get_storage)]


def get_tenant(request: Request, session: SessionDep) -> Tenant:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Send your API key as `Authorization: Bearer <key>`.")
    tenant = tenants.authenticate(session=session, key=token.strip())
    session.expunge(tenant)
    return tenant


TenantDep = Annotated[Tenant, Depends(get_tenant)]
