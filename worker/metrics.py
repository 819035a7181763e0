"""The workers' Prometheus metrics, served on ``SYNTHGEN_WORKER_METRICS_PORT`` by each
Celery worker's main process for all its pool processes.

Jobs run in prefork children, which write their samples to prometheus-client's
multiprocess directory (prepared by worker/serve.py); the main process merges them at
scrape time, and marks a child's live gauges dead when the child exits. What only the
main process knows (its queues and pool size) or reads at scrape time (the GPUs, through
NVML) comes from collectors that run there. Labels are bounded: kinds, engines, statuses,
queue names, delivery outcomes and GPU indices.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Literal, get_args

from celery import signals
from prometheus_client import Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from core.catalog import ENGINES
from core.config import Settings
from core.jobs.states import TERMINAL, JobKind
from core.queue import QUEUES
from core.telemetry import exposition

log = logging.getLogger("synthgen.worker")

JOBS_STARTED = Counter(
    "synthgen_jobs_started_total",
    "Jobs a worker began to run, by kind and engine.",
    ["kind", "engine"],
)
JOBS_FINISHED = Counter(
    "synthgen_jobs_finished_total",
    "Jobs that ended on a worker (run to an end, or given up by the reconciler), "
    "by kind, engine and final status.",
    ["kind", "engine", "status"],
)
JOB_DURATION = Histogram(
    "synthgen_job_duration_seconds",
    "Time a worker spent on a job, from its start to its final status, by kind and engine.",
    ["kind", "engine"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 43200, 86400),
)
QUEUE_WAIT = Histogram(
    "synthgen_job_queue_wait_seconds",
    "Time from a job's submission to its start on a worker, by queue.",
    ["queue"],
    buckets=(0.1, 0.5, 1, 5, 15, 30, 60, 300, 900, 1800, 3600, 7200, 21600),
)
TRAINING_STEPS = Counter(
    "synthgen_training_steps_total",
    "Optimisation steps taken by train jobs, by engine.",
    ["engine"],
)
IMAGES_GENERATED = Counter(
    "synthgen_images_generated_total",
    "Images sampled by generate jobs, by engine.",
    ["engine"],
)
BUSY = Gauge(
    "synthgen_worker_busy",
    "Jobs running now in this worker's processes, by queue.",
    ["queue"],
    multiprocess_mode="livesum",
)
WebhookOutcome = Literal["delivered", "retrying", "failed"]
WEBHOOK_DELIVERIES = Counter(
    "synthgen_webhook_deliveries_total",
    "Webhook delivery attempts, by outcome: delivered (2xx), retrying (failed, another "
    "attempt is scheduled), failed (failed, no attempt left).",
    ["outcome"],
)

# Every known series exists from the start, at 0: a rate or ratio over them is defined
# (0, not absent) before the first failure, and alerts do not wait for one.
for _kind in JobKind:
    for _engine in ENGINES:
        JOBS_STARTED.labels(kind=_kind.value, engine=_engine)
        for _status in TERMINAL:
            JOBS_FINISHED.labels(kind=_kind.value, engine=_engine, status=_status.value)
for _engine in ENGINES:
    TRAINING_STEPS.labels(engine=_engine)
    IMAGES_GENERATED.labels(engine=_engine)
for _queue in QUEUES:
    BUSY.labels(queue=_queue)
for _outcome in get_args(WebhookOutcome):
    WEBHOOK_DELIVERIES.labels(outcome=_outcome)


def record_webhook_delivery(outcome: WebhookOutcome) -> None:
    """Count one webhook delivery attempt (called by the delivery task)."""
    WEBHOOK_DELIVERIES.labels(outcome=outcome).inc()


def job_finished(*, kind: str, engine: str, status: str) -> None:
    JOBS_FINISHED.labels(kind=kind, engine=engine, status=status).inc()


class JobMeter:
    """One job on this worker: started, busy while it runs, finished with its status and
    duration; ``progress(stage, step)`` counts training steps and generated images."""

    def __init__(self, *, kind: str, engine: str, queue: str, queue_wait_s: float) -> None:
        self.kind, self.engine, self.queue = kind, engine, queue
        self.started = time.monotonic()
        self._images = 0
        JOBS_STARTED.labels(kind=kind, engine=engine).inc()
        QUEUE_WAIT.labels(queue=queue).observe(max(queue_wait_s, 0.0))

    @contextmanager
    def busy(self) -> Iterator[None]:
        gauge = BUSY.labels(queue=self.queue)
        gauge.inc()
        try:
            yield
        finally:
            gauge.dec()

    def progress(self, stage: str, step: int) -> None:
        # A train stage reports once per optimisation step (the Engine contract); a
        # generate stage reports the images done so far in the job.
        if stage == "train":
            TRAINING_STEPS.labels(engine=self.engine).inc()
        elif stage == "generate" and step > self._images:
            IMAGES_GENERATED.labels(engine=self.engine).inc(step - self._images)
            self._images = step

    def finished(self, status: str) -> None:
        job_finished(kind=self.kind, engine=self.engine, status=status)
        JOB_DURATION.labels(kind=self.kind, engine=self.engine).observe(
            time.monotonic() - self.started
        )


class WorkerCollector(Collector):
    """The queues this worker consumes and its pool size (known to the main process)."""

    def __init__(self, queues: list[str], concurrency: int) -> None:
        self.queues, self.concurrency = queues, concurrency

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily(
            "synthgen_worker_up", "1 for each queue this worker consumes.", labels=["queue"]
        )
        slots = GaugeMetricFamily(
            "synthgen_worker_concurrency",
            "Jobs this worker can run at once (its pool size), by queue.",
            labels=["queue"],
        )
        for queue in self.queues:
            up.add_metric([queue], 1)
            slots.add_metric([queue], self.concurrency)
        return [up, slots]


class GpuCollector(Collector):
    """Utilisation and memory of each GPU NVML sees; nothing on a host without one."""

    def __init__(self) -> None:
        self._handles: list[Any] = []
        try:
            import pynvml

            pynvml.nvmlInit()
            self._handles = [
                pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())
            ]
        except Exception:  # noqa: BLE001 - no NVML library, driver or device: no GPU series
            log.info("no GPU visible to NVML; GPU metrics are off")

    def describe(self) -> Iterable[Metric]:
        return self._families()

    def collect(self) -> Iterable[Metric]:
        import pynvml

        families = self._families()
        util, used, total = families
        for index, handle in enumerate(self._handles):
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            util.add_metric([str(index)], pynvml.nvmlDeviceGetUtilizationRates(handle).gpu / 100)
            used.add_metric([str(index)], float(memory.used))
            total.add_metric([str(index)], float(memory.total))
        return families if self._handles else []

    @staticmethod
    def _families() -> list[GaugeMetricFamily]:
        return [
            GaugeMetricFamily(
                "synthgen_gpu_utilization_ratio",
                "Fraction of the last sample period the GPU was busy (NVML), by GPU index.",
                labels=["gpu"],
            ),
            GaugeMetricFamily(
                "synthgen_gpu_memory_used_bytes", "GPU memory in use (NVML).", labels=["gpu"]
            ),
            GaugeMetricFamily(
                "synthgen_gpu_memory_total_bytes", "GPU memory in all (NVML).", labels=["gpu"]
            ),
        ]


def install(settings: Settings) -> None:
    """Serve /metrics from the worker's main process; mark pool children dead on exit."""

    @signals.worker_init.connect(weak=False)
    def _serve(sender: Any, **_: Any) -> None:
        if settings.worker_metrics_port is None:
            return
        prefix = settings.queue_prefix
        queues = sorted(q.removeprefix(prefix) for q in sender.app.amqp.queues.consume_from)
        registry = exposition.registry(
            WorkerCollector(queues, int(sender.concurrency)), GpuCollector()
        )
        start_http_server(
            settings.worker_metrics_port, addr=settings.worker_metrics_host, registry=registry
        )

    @signals.worker_process_shutdown.connect(weak=False)
    def _child_exited(pid: int | None = None, **_: Any) -> None:
        if pid is not None:
            exposition.mark_dead(pid)
