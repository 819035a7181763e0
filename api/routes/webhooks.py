"""Webhook secrets (per tenant) and each job's delivery log, with manual retries."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import SessionDep, SettingsDep, TenantDep
from core.db import as_utc
from core.jobs import events, queries
from core.webhooks import service as webhooks
from core.webhooks.orm import WebhookAttempt, WebhookDelivery, WebhookSecret
from core.webhooks.schemas import AttemptOut, DeliveryOut, DeliveryPage, WebhookSecretOut

router = APIRouter(tags=["webhooks"])


def _secret_out(row: WebhookSecret, overlap_s: float) -> WebhookSecretOut:
    return WebhookSecretOut(
        key=row.key, previous_key_valid_until=webhooks.previous_valid_until(row, overlap_s)
    )


@router.get("/v1/webhooks/secret", response_model=WebhookSecretOut)
def get_secret(session: SessionDep, settings: SettingsDep, tenant: TenantDep) -> WebhookSecretOut:
    row = webhooks.get_secret(session=session, tenant_id=tenant.id)
    session.commit()
    return _secret_out(row, settings.webhook_secret_overlap_s)


@router.post("/v1/webhooks/secret/rotate", response_model=WebhookSecretOut)
def rotate_secret(
    session: SessionDep, settings: SettingsDep, tenant: TenantDep
) -> WebhookSecretOut:
    row = webhooks.rotate_secret(session=session, tenant_id=tenant.id)
    session.commit()
    return _secret_out(row, settings.webhook_secret_overlap_s)


def _delivery_out(row: WebhookDelivery, attempts: list[WebhookAttempt]) -> DeliveryOut:
    pending = row.status == "pending"
    return DeliveryOut(
        id=row.id,
        event=row.event,
        event_id=events.public_id(row.event_id),
        url=row.url,
        status=row.status,
        attempts=[
            AttemptOut(
                at=as_utc(a.attempted_at),
                status_code=a.status_code,
                latency_ms=a.latency_ms,
                error=a.error,
                response_body=a.response_body,
            )
            for a in attempts
        ],
        response_status=attempts[-1].status_code if attempts else None,
        next_attempt_at=as_utc(row.next_attempt_at) if pending and row.next_attempt_at else None,
        last_error=row.last_error,
        created_at=as_utc(row.created_at),
        delivered_at=as_utc(row.delivered_at) if row.delivered_at else None,
    )


@router.get("/v1/jobs/{job_id}/webhook-deliveries", response_model=DeliveryPage)
def list_deliveries(job_id: str, session: SessionDep, tenant: TenantDep) -> DeliveryPage:
    queries.get_job(session=session, tenant=tenant, job_id=job_id)
    rows = webhooks.list_deliveries(session=session, job_id=job_id)
    return DeliveryPage(items=[_delivery_out(row, attempts) for row, attempts in rows])


@router.post(
    "/v1/jobs/{job_id}/webhook-deliveries/{delivery_id}/retry",
    response_model=DeliveryOut,
    status_code=202,
)
def retry_delivery(
    job_id: str, delivery_id: str, session: SessionDep, settings: SettingsDep, tenant: TenantDep
) -> DeliveryOut:
    queries.get_job(session=session, tenant=tenant, job_id=job_id)
    row = webhooks.retry_delivery(
        session=session, settings=settings, job_id=job_id, delivery_id=delivery_id
    )
    session.commit()
    webhooks.send_queued(settings=settings, session=session)
    attempts = webhooks.attempts_of(session=session, delivery_ids=[row.id])
    return _delivery_out(row, attempts[row.id])
