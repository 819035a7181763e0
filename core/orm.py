"""Every table, imported in one place so metadata is complete (Alembic, tests)."""

from core.artifacts.orm import Artifact
from core.curves.orm import TrainingPoint
from core.datasets.orm import Dataset
from core.db import Base
from core.imports.orm import ModelImport
from core.jobs.orm import IdempotencyKey, Job, JobEvent, Outbox
from core.model_versions.orm import ModelAlias, ModelAliasMove, ModelVersion
from core.previews.orm import Preview
from core.tenants.orm import ApiKey, Tenant
from core.webhooks.orm import WebhookAttempt, WebhookDelivery, WebhookSecret

__all__ = [
    "ApiKey",
    "Artifact",
    "Base",
    "Dataset",
    "IdempotencyKey",
    "Job",
    "JobEvent",
    "ModelAlias",
    "ModelAliasMove",
    "ModelImport",
    "ModelVersion",
    "Outbox",
    "Preview",
    "Tenant",
    "TrainingPoint",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookSecret",
]
