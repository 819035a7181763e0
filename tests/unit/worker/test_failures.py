"""A user's mistake is told apart from a bug by its type alone."""

from __future__ import annotations

import errno
import logging

import pytest

from core.errors import InvalidRequest, ModelNotFound, StorageError
from errors import UserError
from models.datasets import DatasetError
from models.engines.base import EngineError, Stopped, TrainingDiverged
from models.metrics.errors import MetricsError
from worker.datasets.archive import Rejected
from worker.failures import classify
from worker.pipelines import BadModel


@pytest.mark.parametrize(
    "error",
    [
        EngineError,
        TrainingDiverged,
        DatasetError,
        MetricsError,
        InvalidRequest,
        ModelNotFound,
        BadModel,
        Rejected,
    ],
)
def test_the_users_mistakes_are_user_errors_and_not_value_errors(error):
    assert issubclass(error, UserError)
    assert not issubclass(error, ValueError)


def test_a_user_error_is_shown_with_its_own_type_and_message():
    failure = classify(EngineError("batch_size must be at least 2"))
    assert failure is not None and not failure.bug
    assert failure.as_error() == {"type": "EngineError", "message": "batch_size must be at least 2"}


@pytest.mark.parametrize("bug", [ValueError, KeyError, RuntimeError, TypeError, AssertionError])
def test_any_other_error_is_a_bug_reported_with_an_id_and_not_its_message(bug, caplog):
    with caplog.at_level(logging.ERROR, logger="synthgen.worker"):
        failure = classify(bug("internal detail: tensor of shape (3, 4)"))
    assert failure is not None and failure.bug
    assert failure.type == "InternalError"
    assert "internal detail" not in failure.message
    (record,) = caplog.records
    error_id = record.error_id  # type: ignore[attr-defined]
    assert f"error id {error_id}" in failure.message
    assert record.exc_info is not None and record.exc_info[0] is bug


def test_two_bugs_get_different_ids():
    first, second = classify(ValueError("x")), classify(ValueError("x"))
    assert first is not None and second is not None and first.message != second.message


def test_resources_running_out_say_what_to_change():
    disk = classify(OSError(errno.ENOSPC, "No space left on device"))
    memory = classify(MemoryError())
    storage = classify(StorageError("bucket 'b' is not reachable after 5 attempts"))
    assert disk is not None and (disk.type, disk.bug) == ("DiskFull", False)
    assert memory is not None and (memory.type, memory.bug) == ("OutOfMemory", False)
    assert storage is not None and storage.as_error() == {
        "type": "StorageError",
        "message": "bucket 'b' is not reachable after 5 attempts",
    }


def test_a_gpu_out_of_memory_is_not_a_bug():
    torch = pytest.importorskip("torch")
    failure = classify(torch.cuda.OutOfMemoryError("CUDA out of memory"))
    assert failure is not None and (failure.type, failure.bug) == ("OutOfMemory", False)


def test_a_stop_is_no_failure():
    assert classify(Stopped()) is None
    assert classify(KeyboardInterrupt()) is None
