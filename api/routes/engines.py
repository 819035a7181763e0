"""GET /v1/engines: the engines and every train and sampling option, read from the classes
that validate job bodies (so this listing, the OpenAPI schema, the console's forms and the
checks agree)."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import TenantDep
from core.jobs import engine_configs

router = APIRouter(prefix="/v1/engines", tags=["engines"])


@router.get("", response_model=list[engine_configs.EngineOut])
def list_engines(tenant: TenantDep) -> list[engine_configs.EngineOut]:
    """Each engine with its train and sampling options: type, default (or the rule by
    image size, or what a left-out option samples with), bounds, choices and help text."""
    return engine_configs.engines()
