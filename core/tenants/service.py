"""Tenants and their API keys."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db import utcnow
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
    """The tenant of a live (unrevoked) key; one indexed query on the submit hot path.

    Keys are found by their first characters (which identify a key, as `keys create`
    prints them, and are not enough to use it) and then compared in constant time by
    hash, so how long a refusal takes says nothing about how close a guess was.
    """
    digest = hash_key(key)
    rows = session.execute(
        select(Tenant, ApiKey.key_hash)
        .join(ApiKey, ApiKey.tenant_id == Tenant.id)
        .where(ApiKey.prefix == key[:10], ApiKey.revoked_at.is_(None))
    ).all()
    for tenant, stored in rows:
        if hmac.compare_digest(stored, digest):
            return tenant
    raise Unauthorized("The API key is not valid. Create one with `synthgen keys create`.")


def revoke_key(*, session: Session, prefix: str) -> int:
    """Revoke every live key starting with ``prefix`` (the first 10 characters, as
    ``keys create`` prints them, identify a key); returns how many were revoked."""
    if len(prefix) < len(KEY_PREFIX) + 4:
        raise ValueError(f"give at least {len(KEY_PREFIX) + 4} characters of the key")
    keys = session.scalars(
        select(ApiKey).where(ApiKey.prefix == prefix[:10], ApiKey.revoked_at.is_(None))
    ).all()
    for row in keys:
        row.revoked_at = utcnow()
    session.flush()
    return len(keys)
