"""An evaluate job's ``config.features`` at submit: "auto" (the default) becomes the space
the job runs in, Inception-v3 when the server has its weights, else the reference
dataset's classifier, and the stored request says it was chosen; the worker states it."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from core.config import Settings
from core.errors import InvalidRequest
from core.jobs import admission, sources
from core.jobs.schemas import EvaluateConfig, parse_job
from core.model_versions.orm import ModelVersion
from worker import evaluate as evaluate_handler

VERSION = ModelVersion(
    id="v1", name="m", version=1, engine="ddpm", dataset="digits:train", config={}
)


@pytest.fixture(autouse=True)
def registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sources, "check_reference", lambda **kw: None)
    monkeypatch.setattr(sources, "engine_version", lambda **kw: VERSION)
    monkeypatch.setattr(sources, "audit_blocker", lambda **kw: "not audited in this test")


class _Session:
    """The one read admission makes of an evaluate job's model: its version."""

    def get(self, cls: type, key: str) -> ModelVersion:
        return VERSION


def _submit(settings: Settings, **fields: Any) -> dict[str, Any]:
    body = {"kind": "evaluate", "model": "m", "reference": "digits:test", **fields}
    job_in = parse_job(body)
    tenant: Any = SimpleNamespace(id="t")
    admission.check(session=_Session(), tenant=tenant, job_in=job_in, settings=settings)  # type: ignore[arg-type]
    return job_in.model_dump(mode="json")


@pytest.fixture
def weights(tmp_path: Path) -> Path:
    path = tmp_path / "pt_inception.pth"
    path.write_bytes(b"weights")
    return path


def test_auto_is_the_classifier_on_a_server_without_inception_weights():
    stored = _submit(Settings(inception_weights=None))
    assert stored["config"]["features"] == "classifier"
    assert stored["config"]["features_auto"] is True


def test_auto_is_inception_when_its_weights_are_configured(weights):
    stored = _submit(Settings(inception_weights=weights))
    assert stored["config"]["features"] == "inception"
    assert stored["config"]["features_auto"] is True


def test_a_space_asked_for_is_kept_and_not_marked_auto(weights):
    stored = _submit(Settings(inception_weights=weights), config={"features": "classifier"})
    assert stored["config"] == {
        **stored["config"],
        "features": "classifier",
        "features_auto": False,
    }


def test_inception_asked_without_weights_is_still_refused_naming_metrics():
    with pytest.raises(InvalidRequest, match="SYNTHGEN_INCEPTION_WEIGHTS") as refused:
        _submit(Settings(inception_weights=None), config={"features": "inception"})
    assert refused.value.field == "metrics"


def test_features_auto_in_a_request_is_refused_naming_it():
    with pytest.raises(InvalidRequest, match="set by the service") as refused:
        _submit(Settings(), config={"features": "classifier", "features_auto": True})
    assert refused.value.field == "config.features_auto"


def _ctx(weights: Path | None) -> Any:
    return SimpleNamespace(settings=Settings(inception_weights=weights))


def test_the_worker_states_an_auto_choice_and_why():
    space, note = evaluate_handler._feature_space(
        _ctx(None), EvaluateConfig(features="classifier", features_auto=True)
    )
    assert space == "classifier"
    assert 'features "auto"' in note and "no Inception-v3 weights" in note and "FD, not FID" in note


def test_the_worker_states_a_space_the_request_asked_for(weights):
    space, note = evaluate_handler._feature_space(
        _ctx(weights), EvaluateConfig(features="inception")
    )
    assert (space, note) == ("inception", 'features "inception", as the request asked')
