"""Tenants and their API keys."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import Unauthorized
from core.tenants.orm import ApiKey, Tenant

KEY_PREFIX = "sg_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def get_or_create_tenant(*, session: Session, name: str) -> Tenant:
    tenant = session.scalar(select(Tenant).where(Tenant.name == name))
    if tenant is None:
        tenant = Tenant(name=name)
        session.add(tenant)
        session.flush()
    return tenant


def create_key(*, session: Session, tenant_name: str) -> str:
    """Create a key for the tenant (made if new); returns the plaintext key, shown once."""
    tenant = get_or_create_tenant(session=session, name=tenant_name)
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiKey(tenant_id=tenant.id, prefix=key[:10], key_hash=hash_key(key)))
    session.flush()
    return key


def authenticate(*, session: Session, key: str) -> Tenant:
    row = session.scalar(
        select(ApiKey).where(ApiKey.key_hash == hash_key(key), ApiKey.revoked_at.is_(None))
    )
    if row is None:
        raise Unauthorized("The API key is not valid. Create one with `synthgen keys create`.")
    tenant = session.get(Tenant, row.tenant_id)
    if tenant is None:
        raise Unauthorized("The API key's tenant no longer exists.")
    return tenant
