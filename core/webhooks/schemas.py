"""Pydantic models of the webhook endpoints."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class WebhookSecretOut(BaseModel):
    key: str = Field(description="whsec_…: verify deliveries with the Standard Webhooks libraries")
    previous_key_valid_until: datetime | None = Field(
        default=None,
        description="after a rotation, deliveries are also signed with the previous secret "
        "until then",
    )


class AttemptOut(BaseModel):
    at: datetime
    status_code: int | None
    latency_ms: float | None
    error: str | None
    response_body: str | None = Field(description="the first 4 KiB of the receiver's answer")


class DeliveryOut(BaseModel):
    id: str
    event: str
    event_id: str = Field(description="the webhook-id header of the delivery")
    url: str
    status: str = Field(description="pending, delivered, failed, dropped, gone or canceled")
    attempts: list[AttemptOut]
    response_status: int | None = Field(description="the status code of the last attempt")
    next_attempt_at: datetime | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
