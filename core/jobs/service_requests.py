"""The requests of the jobs the service makes itself (no user submits them): a dataset's
validation and a model's import, each naming the row it works on. Written by the
dataset and import services, parsed by the worker's runner like any submit schema."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from core.jobs.schemas import Strict


class ValidateDatasetIn(Strict):
    kind: Literal["validate_dataset"] = "validate_dataset"
    dataset: str = Field(description="the dataset's id (ds_…)")
    name: str | None = Field(default=None, description="its name when the job was made")


class ImportModelIn(Strict):
    # ``import`` is a keyword: the field is import_id, stored under its alias.
    model_config = ConfigDict(populate_by_name=True)

    kind: Literal["import_model"] = "import_model"
    import_id: str = Field(alias="import", description="the import's id (imp_…)")
