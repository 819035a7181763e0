"""Requests held on purpose (an event stream, `Prefer: wait`) are counted but not timed:
they last as long as the job, and would make the API's p99 alert measure jobs."""

from prometheus_client import REGISTRY

from api import metrics
from api.telemetry import _held


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_held_request_is_counted_but_not_timed():
    labels = {"method": "GET", "route": "/v1/jobs/{job_id}/events"}
    count = _sample("synthgen_http_requests_total", **labels, status="200")
    timed = _sample("synthgen_http_request_duration_seconds_count", **labels)
    metrics.observe_request("GET", labels["route"], 200, 42.0, held=True)
    assert _sample("synthgen_http_requests_total", **labels, status="200") == count + 1
    assert _sample("synthgen_http_request_duration_seconds_count", **labels) == timed


def test_streams_and_prefer_wait_are_held_and_a_plain_poll_is_not():
    assert _held({"headers": []}, "/v1/jobs/{job_id}/events")
    assert _held({"headers": [(b"prefer", b"wait=30")]}, "/v1/jobs/{job_id}")
    assert not _held({"headers": [(b"prefer", b"return=minimal")]}, "/v1/jobs/{job_id}")
    assert not _held({"headers": []}, "/v1/jobs/{job_id}")
