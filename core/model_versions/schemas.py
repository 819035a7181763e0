"""Alias requests and answers at the REST edge."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from core.jobs.schemas import Strict

ALIAS_PATTERN = r"^[A-Za-z][A-Za-z0-9._-]{0,99}$"


class AliasIn(Strict):
    version: int = Field(ge=1, le=2**31 - 1, description="the version number the alias points at")


class AliasOut(BaseModel):
    name: str
    alias: str
    version: int
    model_version_id: str
    updated_at: datetime | None
    updated_by: str | None = Field(description="the first characters of the API key that set it")


class AliasMoveOut(BaseModel):
    alias: str
    from_version: int | None
    to_version: int | None = Field(description="null when the alias was removed")
    moved_by: str
    moved_at: datetime


class AliasesOut(BaseModel):
    items: list[AliasOut]
    moves: list[AliasMoveOut] = Field(description="newest first, at most 100")
