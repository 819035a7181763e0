"""The API's own task messages (core/task_messages.py) are the ones Celery writes: the same
JSON on the same Redis list as ``send_task``, and a batch lands whole and in order. (That a
real worker runs them, every integration test that submits a job shows.)"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator

import pytest
import redis as redis_lib

from core import queue
from core.config import Settings
from core.task_messages import writer_for

pytestmark = pytest.mark.integration


@pytest.fixture
def isolated(settings: Settings) -> Iterator[Settings]:
    """The run's settings on queues of their own, emptied afterwards."""
    prefix = f"{settings.queue_prefix}msg-{uuid.uuid4().hex[:6]}-"
    yield settings.model_copy(update={"queue_prefix": prefix})
    r = redis_lib.Redis.from_url(settings.broker_url)
    for key in r.scan_iter(f"*{prefix}*"):
        r.delete(key)


def test_a_message_is_what_send_task_writes_for_the_same_task(isolated: Settings) -> None:
    r = redis_lib.Redis.from_url(isolated.broker_url)
    name = queue.queue_name(isolated, "gpu")
    queue.client(isolated).send_task(queue.RUN_JOB, args=["job-1"], queue=name, task_id="t-1")
    celerys = json.loads(r.rpop(name))
    writer = queue._writer(isolated.broker_url, isolated.queue_prefix)  # noqa: SLF001
    assert writer is not None
    ours = json.loads(writer.encode(queue.RUN_JOB, ["job-1"], name, task_id="t-1"))

    tags = celerys["properties"].pop("delivery_tag"), ours["properties"].pop("delivery_tag")
    assert ours == celerys
    assert tags[0] != tags[1] and str(uuid.UUID(tags[1])) == tags[1]  # fresh, as kombu's
    assert json.loads(base64.b64decode(ours["body"]))[0] == ["job-1"]


def test_a_batch_lands_whole_on_each_jobs_queue_in_order(isolated: Settings) -> None:
    r = redis_lib.Redis.from_url(isolated.broker_url)
    jobs = [("j1", "gpu"), ("j2", "cpu"), ("j3", "gpu"), ("j4", "gpu.2")]
    queue.publish_jobs(isolated, jobs)

    def consumed(base: str) -> list[tuple[str, str]]:
        """What a worker's BRPOP would take from the queue, in its order."""
        name = queue.queue_name(isolated, base)
        out = []
        while (raw := r.rpop(name)) is not None:
            message = json.loads(raw)
            assert message["properties"]["delivery_info"]["routing_key"] == name
            assert message["headers"]["task"] == queue.RUN_JOB
            out.append((json.loads(base64.b64decode(message["body"]))[0][0], base))
        return out

    assert consumed("gpu") == [("j1", "gpu"), ("j3", "gpu")]
    assert consumed("cpu") == [("j2", "cpu")]
    assert consumed("gpu.2") == [("j4", "gpu.2")]


def test_a_broker_that_is_not_plain_redis_gets_send_task() -> None:
    app = queue.make_celery(Settings(broker_url="sqla+sqlite:///:memory:"))
    assert writer_for(app, "sqla+sqlite:///:memory:") is None
    assert writer_for(app, "sentinel://127.0.0.1:26379") is None
    assert writer_for(app, "redis://127.0.0.1:6379/0") is not None
