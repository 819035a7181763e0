"""The API's Prometheus metrics and ``GET /metrics``.

Counters and histograms are per process and merged at scrape time in multiprocess mode
(core/telemetry/exposition.py). The job-table gauges are read from the database by the
process answering the scrape: Postgres is the truth, a scrape always sees it as it is
now, and nothing has to be merged across processes. Every API replica reports the same
values, so dashboards and alerts take ``max`` over instances. Labels are bounded: route
templates, not paths; job kinds and statuses; queue names.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError

from api.deps import SessionDep
from core.jobs import stats as job_stats
from core.jobs.states import JobKind
from core.telemetry import exposition

log = logging.getLogger("synthgen.api")

HTTP_REQUESTS = Counter(
    "synthgen_http_requests_total",
    "HTTP requests answered, by method, route template and status code.",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "synthgen_http_request_duration_seconds",
    "Time from receiving a request to sending its last byte, by method and route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
JOBS_SUBMITTED = Counter(
    "synthgen_jobs_submitted_total",
    "Jobs created by POST /v1/jobs (idempotent replays not counted), by kind.",
    ["kind"],
)
for _kind in JobKind:
    JOBS_SUBMITTED.labels(kind=_kind.value)  # a series per kind from the start, at 0
exposition.mark_dead_at_exit()


class JobTableCollector(Collector):
    """Gauges of core/jobs/stats.py's snapshot, computed when /metrics is scraped."""

    def __init__(self, snapshot: job_stats.JobStats | None) -> None:
        self.snapshot = snapshot

    def describe(self) -> Iterable[Metric]:
        return self._families(job_stats.JobStats(by_status_kind={}))

    def collect(self) -> Iterable[Metric]:
        return self._families(self.snapshot) if self.snapshot is not None else []

    @staticmethod
    def _families(snapshot: job_stats.JobStats) -> list[Metric]:
        jobs = GaugeMetricFamily(
            "synthgen_jobs", "Jobs in the database, by status and kind.", labels=["status", "kind"]
        )
        for (status, kind), n in sorted(snapshot.by_status_kind.items()):
            jobs.add_metric([status, kind], n)
        per_queue = {
            "length": GaugeMetricFamily(
                "synthgen_queue_length", "Jobs waiting to start, by queue.", labels=["queue"]
            ),
            "oldest_age_s": GaugeMetricFamily(
                "synthgen_queue_oldest_job_age_seconds",
                "Age of the oldest job waiting to start (0 when none is), by queue.",
                labels=["queue"],
            ),
            "heartbeat_age_s": GaugeMetricFamily(
                "synthgen_job_heartbeat_age_seconds",
                "Time since the stalest heartbeat among running jobs (0 when none runs).",
                labels=["queue"],
            ),
            "budget_overrun_s": GaugeMetricFamily(
                "synthgen_job_time_budget_overrun_seconds",
                "How long the running job furthest past its max_seconds has overrun it "
                "(0 when none has).",
                labels=["queue"],
            ),
        }
        for queue, values in sorted(snapshot.queues.items()):
            for attr, family in per_queue.items():
                family.add_metric([queue], getattr(values, attr))
        return [jobs, *per_queue.values()]


router = APIRouter(include_in_schema=False)


@router.get("/metrics")
def serve_metrics(session: SessionDep) -> Response:
    try:
        snapshot = job_stats.snapshot(session=session)
    except SQLAlchemyError:
        # The process metrics are still worth serving; the job-table gauges go absent.
        log.warning("metrics: the job table could not be read", exc_info=True)
        snapshot = None
    registry = exposition.registry(JobTableCollector(snapshot))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def observe_request(
    method: str, route: str, status: int, seconds: float, *, held: bool = False
) -> None:
    """Count every request; time only those answered as soon as they can be. A request
    the client asked us to hold (an event stream, ``Prefer: wait``) lasts as long as the
    job, which would make the latency histogram and its p99 alert measure jobs."""
    HTTP_REQUESTS.labels(method=method, route=route, status=str(status)).inc()
    if not held:
        HTTP_DURATION.labels(method=method, route=route).observe(seconds)
