"""Multi-GPU train jobs at submit: the ``gpus`` field, its checks against the settings,
and the queue that routes the job to a worker with that many GPUs."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from core.config import Settings
from core.errors import InvalidRequest
from core.jobs import admission
from core.jobs.schemas import parse_job
from core.jobs.states import JobKind
from core.queue import gpu_queues, queue_for

TWO_GPU_HOSTS = Settings(max_job_gpus=2)


def _train(engine: str = "ddpm", **fields: Any) -> dict[str, Any]:
    return {"kind": "train", "engine": engine, "dataset": "digits", "model_name": "m", **fields}


def _check(body: dict[str, Any], settings: Settings = TWO_GPU_HOSTS) -> None:
    # Train jobs are checked without the registry: no session or tenant is needed.
    admission.check(session=None, tenant=None, job_in=parse_job(body), settings=settings)  # type: ignore[arg-type]


def test_a_train_job_runs_on_one_gpu_unless_it_asks_for_more() -> None:
    assert parse_job(_train()).gpus == 1  # type: ignore[union-attr]
    assert parse_job(_train(gpus=2)).gpus == 2  # type: ignore[union-attr]


@pytest.mark.parametrize("gpus", [0, -1, 65, "2", 1.5, True])
def test_gpus_must_be_a_positive_integer(gpus: object) -> None:
    with pytest.raises(ValidationError, match="gpus"):
        parse_job(_train(gpus=gpus))


def test_gpus_belongs_to_train_jobs_only() -> None:
    with pytest.raises(ValidationError, match="gpus"):
        parse_job({"kind": "generate", "model": "m", "count": 3, "gpus": 2})


def test_more_gpus_than_any_worker_has_is_refused_naming_gpus() -> None:
    with pytest.raises(InvalidRequest, match="at most 2") as refused:
        _check(_train(gpus=4))
    assert refused.value.field == "gpus"
    with pytest.raises(InvalidRequest, match="SYNTHGEN_MAX_JOB_GPUS"):
        _check(_train(gpus=2), Settings())  # one GPU per worker unless the operators say


def test_a_job_within_the_largest_worker_is_accepted() -> None:
    _check(_train(gpus=2))
    _check(_train("gan", gpus=2, config={"batch_size": 64}))


def test_ebm_trains_on_one_gpu_only() -> None:
    _check(_train("ebm", gpus=1))
    with pytest.raises(InvalidRequest, match="engine 'ebm' trains on one GPU") as refused:
        _check(_train("ebm", gpus=2))
    assert refused.value.field == "gpus"


def test_a_batch_that_does_not_split_evenly_over_the_gpus_is_refused() -> None:
    settings = Settings(max_job_gpus=8)
    with pytest.raises(InvalidRequest, match="batch_size 30 does not split evenly over 4"):
        _check(_train(gpus=4, config={"batch_size": 30}), settings)
    with pytest.raises(InvalidRequest, match="default batch_size does not split evenly over 3"):
        _check(_train(gpus=3), settings)
    _check(_train(gpus=3, config={"batch_size": 48}), settings)


def test_a_multi_gpu_job_goes_to_the_queue_of_workers_with_that_many_gpus() -> None:
    assert queue_for(JobKind.train, _train(gpus=4)) == "gpu.4"
    assert queue_for(JobKind.train, _train()) == "gpu"
    assert queue_for(JobKind.train, _train(gpus=1)) == "gpu"
    assert queue_for(JobKind.generate, {"model": "m", "count": 3}) == "gpu"


def test_a_worker_takes_the_queues_of_every_gpu_count_up_to_its_own() -> None:
    assert gpu_queues(1) == ["gpu"]
    assert gpu_queues(4) == ["gpu", "gpu.2", "gpu.3", "gpu.4"]


@pytest.mark.parametrize(
    ("option", "value"), [("eval_every", 100), ("keep", "best"), ("early_stop_patience", 3)]
)
def test_a_data_parallel_run_refuses_the_scoring_options_naming_them(option, value) -> None:
    with pytest.raises(InvalidRequest) as refused:
        _check(_train(gpus=2, config={option: value}))
    assert refused.value.field == f"config.{option}"


def test_a_data_parallel_run_takes_the_scoring_options_that_switch_it_off() -> None:
    _check(_train(gpus=2, config={"eval_every": 0, "keep": "last"}))
