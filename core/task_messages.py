"""Celery task messages written straight onto the Redis lists Celery's workers read.

Why not ``send_task`` on the submit path: it costs ~390 µs of CPU per message on the
2-core bench host (kombu's Redis channel builds a new redis client per message, Celery
routes and declares the queue and kombu wraps the write in its retry machinery on every
call), as much as a bare FastAPI request whole (bench/submission.py; BENCHMARKS.md). Here
Celery's own protocol code still writes each message (``app.amqp.create_task_message``:
the headers, the body), kombu serialises the body, and what kombu's virtual transport adds
on the way to Redis (the envelope, the base64 body, the delivery tag; a direct queue is an
anonymous-exchange publish to the list named for the queue) is added here the same way.
Many messages go in one LPUSH per queue on one kept connection.

tests/integration/test_task_messages.py holds the messages to what ``send_task`` writes
for the same task id, so an upgrade of Celery or kombu that changes the format fails a
test; and every integration test's real worker reads them.

Only ``redis://`` and ``rediss://`` brokers (:func:`writer_for`); anything else, and every
publish outside the API's dispatcher, goes through ``send_task``. Celery's
``before_task_publish``/``after_task_publish`` signals do not fire for these messages
(nothing in synthgen listens to them).
"""

from __future__ import annotations

import base64
import json
import uuid
from collections import defaultdict
from collections.abc import Iterable

import redis
from celery import Celery
from kombu.serialization import dumps

SCHEMES = ("redis://", "rediss://")


class RedisTaskWriter:
    def __init__(self, app: Celery, broker_url: str) -> None:
        self.app = app
        # One client (thread-safe, pooled connections) for the process's life; kombu's
        # Redis channel makes a new one per message.
        self.client = redis.Redis.from_url(broker_url)
        self.serializer = app.conf.task_serializer
        self.reply_to = app.thread_oid  # what send_task puts there

    def encode(
        self, task_name: str, args: list[str], queue: str, task_id: str | None = None
    ) -> bytes:
        """The bytes kombu's Redis transport would LPUSH for ``send_task(task_name,
        args=args, queue=queue, task_id=task_id)`` on a queue with a direct exchange of its
        own (core/queue.py's ``declare``), but for the delivery tag, fresh per message."""
        task_id = task_id or str(uuid.uuid4())
        headers, properties, body, _ = self.app.amqp.create_task_message(
            task_id,
            task_name,
            args,
            {},
            reply_to=self.reply_to,
            ignore_result=None,  # send_task's default: the app's setting decides
            # What Celery's saferepr writes for a list of short strings, without its cost.
            argsrepr=repr(args),
            kwargsrepr="{}",
        )
        content_type, content_encoding, data = dumps(body, serializer=self.serializer)
        properties.update(
            delivery_mode=2,  # persistent: kombu's default for a direct exchange
            delivery_info={"exchange": "", "routing_key": queue},
            priority=0,
            body_encoding="base64",
            delivery_tag=str(uuid.uuid4()),
        )
        raw = data if isinstance(data, bytes) else data.encode(content_encoding)
        message = {
            "body": base64.b64encode(raw).decode("ascii"),
            "content-encoding": content_encoding,
            "content-type": content_type,
            "headers": headers,
            "properties": properties,
        }
        return json.dumps(message).encode()

    def push(self, messages: Iterable[tuple[str, bytes]]) -> None:
        """LPUSH each (queue, message), one command per queue, in one round trip."""
        by_queue: dict[str, list[bytes]] = defaultdict(list)
        for queue, message in messages:
            by_queue[queue].append(message)
        if not by_queue:
            return
        with self.client.pipeline(transaction=False) as pipe:
            for queue, batch in by_queue.items():
                pipe.lpush(queue, *batch)
            pipe.execute()


def writer_for(app: Celery, broker_url: str) -> RedisTaskWriter | None:
    """A writer when the broker is a plain Redis URL, else None (use ``send_task``)."""
    if not broker_url.startswith(SCHEMES):
        return None
    return RedisTaskWriter(app, broker_url)
