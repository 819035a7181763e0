"""A worker with several GPUs takes the queues of the multi-GPU train jobs it can run."""

from __future__ import annotations

import sys
import types

import pytest

from core.config import Settings
from core.queue import make_celery
from worker.gpus import subscribe, visible_gpus


def _worker(*queues: str, prefix: str = ""):  # noqa: ANN202 - a Celery app
    app = make_celery(Settings(queue_prefix=prefix))
    app.amqp.queues.select([f"{prefix}{q}" for q in queues])  # what `-Q` does
    return app


def test_a_gpu_worker_takes_a_queue_per_gpu_count_it_can_serve() -> None:
    app = _worker("gpu")
    assert subscribe(app, Settings(), gpus=3) == ["gpu.2", "gpu.3"]
    assert set(app.amqp.queues.consume_from) == {"gpu", "gpu.2", "gpu.3"}


def test_the_worker_binds_gpu_n_as_the_api_publishes_to_it() -> None:
    worker, api = _worker("gpu", prefix="t-"), make_celery(Settings(queue_prefix="t-"))
    subscribe(worker, Settings(queue_prefix="t-"), gpus=2)
    consumed = worker.amqp.queues.consume_from["t-gpu.2"]
    published = api.amqp.queues["t-gpu.2"]  # created on first use by send_task(queue=...)
    assert (consumed.exchange.name, consumed.exchange.type, consumed.routing_key) == (
        published.exchange.name, published.exchange.type, published.routing_key,
    )  # fmt: skip


def test_a_one_gpu_or_bookkeeping_worker_takes_no_multi_gpu_queue() -> None:
    assert subscribe(_worker("gpu"), Settings(), gpus=1) == []
    assert subscribe(_worker("gpu"), Settings(), gpus=0) == []
    assert subscribe(_worker("cpu"), Settings(), gpus=8) == []


@pytest.fixture
def four_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    nvml = types.SimpleNamespace(nvmlInit=lambda: None, nvmlDeviceGetCount=lambda: 4)
    monkeypatch.setitem(sys.modules, "pynvml", nvml)


@pytest.mark.usefixtures("four_gpus")
def test_the_gpus_counted_are_those_cuda_visible_devices_leaves() -> None:
    assert visible_gpus(None) == 4
    assert visible_gpus("2,3") == 2
    assert visible_gpus("") == 0


def test_a_host_without_nvml_has_no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails
    assert visible_gpus(None) == 0
