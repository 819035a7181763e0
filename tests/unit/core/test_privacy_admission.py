"""Private train jobs at submit: what only admission can refuse (``gpus``, and ``init_from``
a model that learnt the same data without privacy), each a refusal naming its field."""

from __future__ import annotations

from typing import Any

import pytest

from core.config import Settings
from core.errors import InvalidRequest
from core.jobs import admission, sources
from core.jobs.schemas import parse_job
from core.model_versions.orm import ModelVersion

PRIVACY = {"epsilon": 2.0}


def _train(engine: str = "ddpm", **fields: Any) -> dict[str, Any]:
    return {"kind": "train", "engine": engine, "dataset": "digits", "model_name": "m", **fields}


def _check(body: dict[str, Any]) -> str | None:
    return admission.check(
        session=None,  # type: ignore[arg-type]
        tenant=None,  # type: ignore[arg-type]
        job_in=parse_job(body),
        settings=Settings(max_job_gpus=2),
    )


@pytest.fixture
def parent(monkeypatch: pytest.MonkeyPatch) -> ModelVersion:
    version = ModelVersion(
        id="v1", name="p", version=1, engine="ddpm", dataset="digits:train", config={}
    )
    monkeypatch.setattr(sources.model_versions, "resolve", lambda **kw: version)
    return version


def test_a_private_job_on_several_gpus_is_refused_naming_gpus():
    with pytest.raises(InvalidRequest, match="gpus: a private run") as refused:
        _check(_train(gpus=2, config={"privacy": PRIVACY}))
    assert refused.value.field == "gpus"
    _check(_train(gpus=2))  # without privacy, two GPUs are fine


def test_a_private_job_from_a_non_private_parent_on_the_same_data_is_refused(parent):
    parent.config = {"privacy": None}
    body = _train(init_from="p:1", config={"privacy": PRIVACY})
    with pytest.raises(InvalidRequest, match="init_from: model p:1 was trained on digits") as no:
        _check(body)
    assert no.value.field == "init_from"
    with pytest.raises(InvalidRequest, match="init_from"):
        _check({**body, "dataset": "digits:test"})  # another split of the same data


def test_a_private_job_may_start_from_a_private_parent_or_one_of_other_data(parent):
    body = _train(init_from="p:1", config={"privacy": PRIVACY})
    parent.config = {"privacy": {"epsilon": 1.0, "delta": 1e-4, "max_grad_norm": 1.0}}
    assert _check(body) == "v1"
    parent.config, parent.dataset = {}, "shapes:train"
    assert _check(body) == "v1"
    parent.dataset = "digits:train"
    assert _check(_train(init_from="p:1")) == "v1"  # not private: any parent
