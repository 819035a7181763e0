"""Every table, imported in one place so metadata is complete (Alembic, tests)."""

from core.artifacts.orm import Artifact
from core.db import Base
from core.jobs.orm import IdempotencyKey, Job, JobEvent, Outbox
from core.model_versions.orm import ModelAlias, ModelVersion
from core.tenants.orm import ApiKey, Tenant
from core.webhooks.orm import WebhookAttempt, WebhookDelivery, WebhookSecret

__all__ = [
    "ApiKey",
    "Artifact",
    "Base",
    "IdempotencyKey",
    "Job",
    "JobEvent",
    "ModelAlias",
    "ModelVersion",
    "Outbox",
    "Tenant",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookSecret",
]
