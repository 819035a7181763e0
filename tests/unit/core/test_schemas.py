import pytest
from pydantic import TypeAdapter, ValidationError

from core.jobs.schemas import EvaluateJobIn, GenerateJobIn, JobIn, TrainGAN

adapter = TypeAdapter(JobIn)


def test_kind_selects_the_request_model():
    assert isinstance(
        adapter.validate_python(
            {"kind": "train", "engine": "gan", "dataset": "digits", "model_name": "g"}
        ),
        TrainGAN,
    )
    assert isinstance(
        adapter.validate_python({"kind": "generate", "model": "g", "count": 3}), GenerateJobIn
    )
    assert isinstance(
        adapter.validate_python({"kind": "evaluate", "model": "g", "reference": "digits:test"}),
        EvaluateJobIn,
    )


def test_unknown_fields_are_rejected():
    with pytest.raises(ValidationError, match="colour"):
        adapter.validate_python({"kind": "generate", "model": "g", "count": 3, "colour": 1})


def test_engine_specific_options_are_checked_against_the_engine():
    ok = {
        "kind": "train",
        "engine": "ddpm",
        "dataset": "digits",
        "model_name": "m",
        "config": {"beta_schedule": "cosine"},
    }
    adapter.validate_python(ok)
    with pytest.raises(ValidationError, match="config.n_critic"):
        adapter.validate_python({**ok, "config": {"n_critic": 5}})


def test_dataset_split_must_exist():
    with pytest.raises(ValidationError, match="no split 'valid'"):
        adapter.validate_python(
            {"kind": "train", "engine": "ddpm", "dataset": "digits:valid", "model_name": "m"}
        )


def test_labels_longer_than_count_are_rejected():
    with pytest.raises(ValidationError, match="labels"):
        adapter.validate_python({"kind": "generate", "model": "g", "count": 1, "labels": [0, 1]})


def test_evaluate_needs_exactly_one_source():
    with pytest.raises(ValidationError, match="exactly one"):
        adapter.validate_python({"kind": "evaluate", "reference": "digits:test"})


def test_evaluate_count_defaults_to_1000_with_a_model_and_to_all_with_a_source_job():
    base = {"kind": "evaluate", "reference": "digits:test"}
    assert adapter.validate_python({**base, "model": "g"}).count == 1000
    assert adapter.validate_python({**base, "source_job": "j"}).count is None
    assert adapter.validate_python({**base, "source_job": "j", "count": 20}).count == 20


def test_evaluate_feature_space_defaults_to_auto_and_is_one_of_three():
    body = {"kind": "evaluate", "model": "g", "reference": "digits:test"}
    assert adapter.validate_python(body).config.features == "auto"
    with pytest.raises(ValidationError, match="features"):
        adapter.validate_python({**body, "config": {"features": "clip"}})


def test_evaluate_metrics_left_out_are_resolved_at_submit_not_here():
    body = {"kind": "evaluate", "model": "g", "reference": "digits:test"}
    assert adapter.validate_python(body).metrics is None
    with pytest.raises(ValidationError, match="metrics"):
        adapter.validate_python({**body, "metrics": []})


def test_evaluate_takes_the_privacy_metrics_by_name():
    body = {"kind": "evaluate", "model": "g", "reference": "digits:test"}
    asked = ["memorization", "membership_inference"]
    assert adapter.validate_python({**body, "metrics": asked}).metrics == asked


@pytest.mark.parametrize("ref", ["digits:valid", "faces:valid", "ds_123", "a:b:c"])
def test_train_reference_must_name_a_dataset_split(ref):
    body = {"kind": "evaluate", "model": "g", "reference": "digits:test"}
    with pytest.raises(ValidationError, match="train_reference"):
        adapter.validate_python({**body, "config": {"train_reference": ref}})


@pytest.mark.parametrize("field", ["dataset", "reference"])
def test_an_uploaded_datasets_name_is_taken_as_a_reference_and_resolved_at_submit(field):
    body = (
        {"kind": "train", "engine": "ddpm", "dataset": "mnist100", "model_name": "m"}
        if field == "dataset"
        else {"kind": "evaluate", "model": "g", "reference": "mnist100:test"}
    )
    assert getattr(adapter.validate_python(body), field).startswith("mnist100")
    with pytest.raises(ValidationError, match="no split 'valid'"):
        adapter.validate_python({**body, field: "mnist100:valid"})


def test_generate_takes_the_multistep_solvers_and_a_precision():
    job = adapter.validate_python(
        {
            "kind": "generate",
            "model": "g",
            "count": 3,
            "config": {"sampler": "dpm_solver_multistep", "steps": 15, "precision": "fp32"},
        }
    )
    assert job.config.options() == {
        "sampler": "dpm_solver_multistep",
        "steps": 15,
        "precision": "fp32",
    }


@pytest.mark.parametrize("sampler", ["dpm_solver_multistep", "unipc"])
def test_eta_with_a_deterministic_solver_is_refused_naming_eta(sampler):
    body = {"kind": "generate", "model": "g", "count": 3, "config": {"sampler": sampler}}
    with pytest.raises(ValidationError, match=r"config\.eta\n.*applies to sampler ddim only"):
        adapter.validate_python({**body, "config": {"sampler": sampler, "eta": 0.3}})
    adapter.validate_python({**body, "config": {"sampler": sampler, "eta": 0.0}})  # η 0: theirs
    adapter.validate_python({**body, "config": {"sampler": "ddim", "eta": 0.3}})
