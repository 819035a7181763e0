"""The Celery client the API publishes with: tasks are sent by name, so api/ never imports
worker/. The worker's app is built from the same function, so both agree on settings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from celery import Celery
from kombu import Exchange, Queue

from core.config import Settings
from core.jobs.states import JobKind
from core.task_messages import RedisTaskWriter, writer_for

RUN_JOB = "worker.tasks.run_job"
DELIVER_WEBHOOK = "worker.tasks.deliver_webhooks"
RECONCILE = "worker.tasks.reconcile"
RETENTION = "worker.tasks.retention"

RUN_PREVIEW = "worker.tasks.run_preview"
# Previews have a queue of their own, consumed by a worker of their own (`-Q preview`),
# so a preview never waits behind a train job holding the gpu worker.
PREVIEW_QUEUE = "preview"

# Heavy kinds go to the accelerator queue; bookkeeping to the cpu queue.
QUEUES = ("gpu", "cpu")
QUEUE_FOR_KIND: dict[JobKind, str] = {
    JobKind.train: "gpu",
    JobKind.generate: "gpu",
    JobKind.evaluate: "gpu",
    JobKind.txt2img: "gpu",
    JobKind.validate_dataset: "cpu",
    JobKind.import_model: "cpu",
}


def queue_for(kind: JobKind, request: Mapping[str, Any]) -> str:
    """The queue a job goes to: its kind's, or ``gpu.N`` for a train job on N > 1 GPUs,
    which only workers with at least N GPUs consume (:func:`gpu_queues`): Celery's routing
    places the job, no scheduler of ours."""
    gpus = int(request.get("gpus", 1)) if kind == JobKind.train else 1
    base = QUEUE_FOR_KIND[kind]
    return f"{base}.{gpus}" if gpus > 1 else base


def gpu_queues(gpus: int) -> list[str]:
    """The job queues a worker with ``gpus`` GPUs takes: ``gpu`` and ``gpu.N`` for every
    N from 2 to ``gpus``, so a job asking for N GPUs waits for a host that has them."""
    return ["gpu", *(f"gpu.{n}" for n in range(2, gpus + 1))]


def declare(name: str) -> Queue:
    """The queue ``name`` with its own direct exchange and key: what every queue here is,
    and what Celery makes of a queue name it does not know yet (``gpu.N``) on publish."""
    return Queue(name, Exchange(name, type="direct"), routing_key=name)


def queue_name(settings: Settings, base: str) -> str:
    return f"{settings.queue_prefix}{base}"


def make_celery(settings: Settings, *, main: str = "synthgen") -> Celery:
    app = Celery(main, broker=settings.broker_url)
    gpu, cpu = (queue_name(settings, q) for q in QUEUES)
    preview = queue_name(settings, PREVIEW_QUEUE)
    app.conf.update(
        # Each queue gets its own exchange and key: sharing Celery's default exchange would
        # bind both queues to one routing key and deliver every message twice.
        task_queues=[declare(q) for q in (gpu, cpu, preview)],
        task_default_queue=cpu,
        # A job message is acknowledged only after the task ran, and given back to the
        # broker if the worker process dies: together with the compare-and-set start in
        # the runner this gives at-least-once delivery and exactly-once execution.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        broker_connection_retry_on_startup=True,
        task_serializer="json",
        accept_content=["json"],
        worker_hijack_root_logger=False,
    )
    if settings.broker_url.startswith("redis"):
        # Redis redelivers an unacked message after this long; a train job may run for hours.
        app.conf.broker_transport_options = {"visibility_timeout": 12 * 3600}
    return app


@lru_cache(maxsize=4)
def _client(broker_url: str, prefix: str) -> Celery:
    return make_celery(Settings(broker_url=broker_url, queue_prefix=prefix), main="synthgen-api")


def client(settings: Settings) -> Celery:
    return _client(settings.broker_url, settings.queue_prefix)


def publish_job(settings: Settings, job_id: str, queue: str) -> None:
    client(settings).send_task(RUN_JOB, args=[job_id], queue=queue_name(settings, queue))


@lru_cache(maxsize=4)
def _writer(broker_url: str, prefix: str) -> RedisTaskWriter | None:
    return writer_for(_client(broker_url, prefix), broker_url)


def publish_jobs(settings: Settings, jobs: Sequence[tuple[str, str]]) -> None:
    """Send many jobs' tasks, each ``(job_id, queue)``, at once: the API's dispatcher
    (core/jobs/outbox.py). On a Redis broker the messages go in one round trip, written
    as core/task_messages.py says; elsewhere one ``send_task`` each. Raises what the
    broker raised (some may have been sent: a second message is harmless, the runner's
    compare-and-set start runs a job once)."""
    writer = _writer(settings.broker_url, settings.queue_prefix)
    if writer is None:
        for job_id, queue in jobs:
            publish_job(settings, job_id, queue)
        return
    named = [(job_id, queue_name(settings, queue)) for job_id, queue in jobs]
    writer.push((name, writer.encode(RUN_JOB, [job_id], name)) for job_id, name in named)


def publish_preview(settings: Settings, preview_id: str) -> None:
    client(settings).send_task(
        RUN_PREVIEW,
        args=[preview_id],
        queue=queue_name(settings, PREVIEW_QUEUE),
        # Nobody waits for a preview older than its rows are kept: drop it unrun.
        expires=settings.preview_ttl_s,
    )


def ping_broker(settings: Settings, timeout: float = 2.0) -> None:
    with client(settings).connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=timeout)


def publish_deliveries(settings: Settings, job_id: str, countdown: float | None = None) -> None:
    """Ask a cpu worker to send the job's due webhook deliveries (now, or in ``countdown`` s)."""
    client(settings).send_task(
        DELIVER_WEBHOOK, args=[job_id], queue=queue_name(settings, "cpu"), countdown=countdown
    )
