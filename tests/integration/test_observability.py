"""Operating the live stack: metrics from two uvicorn workers and a prefork Celery worker
add up exactly, Prometheus (the real binary) evaluates every dashboard panel and every
alert rule over them, and logs carry the request, tenant and job they belong to."""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.multiprocess import MultiProcessCollector

from core.config import Settings
from core.db import session_scope
from core.tenants import service as tenants
from tests.integration.conftest import ROOT, TINY_DDPM
from tests.integration.observability_stack import Stack, run_stack, sample, wait_for
from worker.metrics import GpuCollector

DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "synthgen.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
VARIABLES = {"$__rate_interval": "15s", "$queue": "gpu", "$engine": "ddpm"}
NAME = re.compile(r"\bsynthgen_[a-z_]+")
GPU_NAMES = {family.name for family in GpuCollector().describe()}


@pytest.fixture(scope="module")
def stack(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    own = settings.model_copy(update={"queue_prefix": f"{settings.queue_prefix}obs-"})
    yield from run_stack(own, tmp_path_factory.mktemp("observability"))


@pytest.fixture(scope="module")
def auth(settings: Settings) -> dict[str, str]:
    with session_scope(settings.database_url) as session:
        key = tenants.create_key(session=session, tenant_name=f"obs-{uuid.uuid4().hex[:8]}")
    return {"Authorization": f"Bearer {key}"}


def _wait_job(stack: Stack, auth: dict[str, str], job: dict[str, Any]) -> dict[str, Any]:
    url = f"{stack.api_url}/v1/jobs/{job['id']}"
    wait_for(
        lambda: httpx.get(url, headers=auth).json()["status"] in {"succeeded", "failed"},
        f"job {job['id']}",
        timeout_s=180,
    )
    return httpx.get(url, headers=auth).json()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def ran_jobs(stack: Stack, auth: dict[str, str]) -> dict[str, Any]:
    """A ddpm train job, then a generate job from its model, both run to success; the
    worker's /metrics before and after."""
    before = httpx.get(stack.worker_metrics_url).text
    request_id = f"obs-{uuid.uuid4().hex}"
    body = {"kind": "train", "engine": "ddpm", "dataset": "shapes", "model_name": "obs-ddpm",
            "config": TINY_DDPM}  # fmt: skip
    answer = httpx.post(
        f"{stack.api_url}/v1/jobs", json=body, headers={**auth, "X-Request-ID": request_id}
    )
    assert answer.status_code == 201, answer.text
    train = _wait_job(stack, auth, answer.json())
    assert train["status"] == "succeeded", train
    body = {"kind": "generate", "model": "obs-ddpm", "count": 8, "output_format": "npz",
            "config": {"sampler": "ddim", "steps": 3}}  # fmt: skip
    generate = _wait_job(
        stack, auth, httpx.post(f"{stack.api_url}/v1/jobs", json=body, headers=auth).json()
    )
    assert generate["status"] == "succeeded", generate
    after = httpx.get(stack.worker_metrics_url).text
    return {"train": train, "generate": generate, "request_id": request_id,
            "before": before, "after": after, "answer": answer}  # fmt: skip


def _delta(ran: dict[str, Any], name: str, **labels: str) -> float:
    return sample(ran["after"], name, **labels) - sample(ran["before"], name, **labels)


def test_worker_counts_each_job_once_across_pool_children(ran_jobs):
    ddpm = {"engine": "ddpm"}
    assert _delta(ran_jobs, "synthgen_jobs_started_total", kind="train", **ddpm) == 1
    assert _delta(ran_jobs, "synthgen_jobs_started_total", kind="generate", **ddpm) == 1
    for kind in ("train", "generate"):
        assert (
            _delta(ran_jobs, "synthgen_jobs_finished_total", kind=kind, status="succeeded", **ddpm)
            == 1
        )
        assert _delta(ran_jobs, "synthgen_job_duration_seconds_count", kind=kind, **ddpm) == 1
    assert _delta(ran_jobs, "synthgen_job_queue_wait_seconds_count", queue="gpu") == 2


def test_worker_counts_training_steps_and_generated_images(ran_jobs):
    assert (
        _delta(ran_jobs, "synthgen_training_steps_total", engine="ddpm") == TINY_DDPM["max_steps"]
    )
    assert _delta(ran_jobs, "synthgen_images_generated_total", engine="ddpm") == 8


def test_exited_pool_children_leave_counts_but_no_live_gauges(stack, ran_jobs):
    # Each child ran one task and was replaced; worker_process_shutdown marked it dead:
    # its counters still add to the totals, its live gauge file is gone.
    def pids(pattern: str) -> set[int]:
        return {int(p.stem.rsplit("_", 1)[1]) for p in stack.worker_metrics_dir.glob(pattern)}

    exited = {pid for pid in pids("counter_*.db") if not _alive(pid)}
    assert exited
    assert pids("gauge_live*") and not pids("gauge_live*") & exited
    assert sample(ran_jobs["after"], "synthgen_worker_busy", queue="gpu") == 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_job_counter_equals_submissions_across_api_processes(stack, auth):
    before = sample(httpx.get(f"{stack.api_url}/metrics").text,
                    "synthgen_jobs_submitted_total", kind="train")  # fmt: skip
    body = {"kind": "train", "engine": "gan", "dataset": "shapes", "model_name": "obs-count",
            "config": {"max_steps": 1, "image_size": 8}}  # fmt: skip

    def submit_and_cancel(_: int) -> None:
        # A fresh connection each time, so the kernel spreads them over both processes.
        with httpx.Client(base_url=stack.api_url, headers=auth) as client:
            job = client.post("/v1/jobs", json=body)
            assert job.status_code == 201, job.text
            client.post(f"/v1/jobs/{job.json()['id']}/cancel")

    submitted = 0
    with ThreadPoolExecutor(4) as pool:
        while len(_processes_that_counted(stack.api_metrics_dir)) < 2:
            assert submitted < 80, "every submission went to one API process"
            list(pool.map(submit_and_cancel, range(8)))
            submitted += 8
    after = sample(httpx.get(f"{stack.api_url}/metrics").text,
                   "synthgen_jobs_submitted_total", kind="train")  # fmt: skip
    assert after - before == submitted


def _processes_that_counted(directory: Path) -> set[str]:
    pids = set()
    for path in directory.glob("counter_*.db"):
        for metric in MultiProcessCollector.merge([str(path)], accumulate=False):
            for s in metric.samples:
                if s.name == "synthgen_jobs_submitted_total" and s.labels["kind"] == "train":
                    if s.value > 0:
                        pids.add(path.stem)
    return pids


@pytest.fixture(scope="module")
def scraped(stack, ran_jobs) -> Stack:
    """Prometheus has scraped both targets since the jobs ended, and evaluated the rules."""
    generate = 'synthgen_jobs_finished_total{kind="generate",status="succeeded",engine="ddpm"}'
    wait_for(lambda: bool(stack.query(f"{generate} > 0")["data"]["result"]), "a scrape")
    scraped_at = float(stack.query("time()")["data"]["result"][0])
    wait_for(
        lambda: all(_evaluated_at(rule) > scraped_at for rule in _rules(stack)),
        "a rule evaluation after that scrape",
    )
    return stack


def _evaluated_at(rule: dict[str, Any]) -> float:
    # RFC 3339 in UTC ("...Z"), with nanoseconds Python's parser does not take.
    stamp = rule["lastEvaluation"]
    assert stamp.endswith("Z"), stamp
    return datetime.fromisoformat(stamp[:19]).replace(tzinfo=UTC).timestamp()


def _rules(stack: Stack) -> list[dict[str, Any]]:
    groups = httpx.get(f"{stack.prometheus_url}/api/v1/rules").json()["data"]["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_prometheus_scrapes_the_api_and_the_worker(scraped):
    up = {r["metric"]["job"]: r["value"][1] for r in scraped.query("up")["data"]["result"]}
    assert up == {"synthgen-api": "1", "synthgen-worker": "1"}


def _panel_targets() -> list[tuple[str, str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [
        (panel["title"], target["expr"], target.get("legendFormat", ""))
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]


def _substitute(expr: str) -> str:
    for variable, value in VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"unsubstituted variable in {expr}"
    return expr


def test_every_dashboard_expression_names_metrics_the_services_export(scraped):
    exported = (
        httpx.get(f"{scraped.api_url}/metrics").text + httpx.get(scraped.worker_metrics_url).text
    )
    for title, expr, _ in _panel_targets():
        for name in NAME.findall(expr):
            assert name in GPU_NAMES or re.search(rf"^{name}[ {{]", exported, re.M), (title, name)


def test_prometheus_answers_every_dashboard_expression_with_labelled_series(scraped):
    gpu_visible = "synthgen_gpu_" in httpx.get(scraped.worker_metrics_url).text
    for title, expr, legend in _panel_targets():
        answer = scraped.query(_substitute(expr))
        assert answer["status"] == "success", (title, answer)
        assert answer["data"]["resultType"] == "vector", title
        series = answer["data"]["result"]
        if set(NAME.findall(expr)) <= GPU_NAMES and not gpu_visible:
            assert series == [], title  # NVML sees no GPU here: the panel is empty, not wrong
            continue
        assert series, f"panel {title!r}: no data for {expr}"
        for label in re.findall(r"{{\s*(\w+)\s*}}", legend):
            assert all(label in s["metric"] for s in series), (title, label)


def test_dashboard_variables_list_the_observed_queue_and_engine(scraped):
    dashboard = json.loads(DASHBOARD.read_text())
    for variable in dashboard["templating"]["list"]:
        metric, label = re.fullmatch(
            r"label_values\((\w+), (\w+)\)", variable["definition"]
        ).groups()
        result = scraped.query(f"group by ({label}) ({metric})")["data"]["result"]
        assert VARIABLES[f"${variable['name']}"] in {r["metric"][label] for r in result}


def test_prometheus_evaluates_every_alert_rule_without_error(scraped):
    rules = yaml.safe_load(ALERTS.read_text())["groups"][0]["rules"]
    loaded = {r["name"]: r for r in _rules(scraped)}
    assert set(loaded) == {r["alert"] for r in rules}
    for name, rule in loaded.items():
        assert rule["health"] == "ok", (name, rule.get("lastError"))


def test_every_alert_expression_reads_series_the_stack_exports(scraped):
    for rule in yaml.safe_load(ALERTS.read_text())["groups"][0]["rules"]:
        answer = scraped.query(rule["expr"])
        assert answer["status"] == "success" and answer["data"]["resultType"] == "vector"
        for name, matchers in re.findall(r"\b(synthgen_[a-z_]+)(?:\{([^}]*)\})?", rule["expr"]):
            series = scraped.query(name)["data"]["result"]
            assert series, (rule["alert"], name)
            for label in re.findall(r"(\w+)\s*[=!]~?", matchers):
                assert all(label in s["metric"] for s in series), (rule["alert"], name, label)


def _json_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def test_api_returns_the_request_id_and_logs_it_with_tenant_and_job(stack, ran_jobs):
    answer = ran_jobs["answer"]
    assert answer.headers["x-request-id"] == ran_jobs["request_id"]
    (line,) = [
        line
        for line in _json_lines(stack.api_log)
        if line.get("request_id") == ran_jobs["request_id"]
    ]
    assert line["job_id"] == ran_jobs["train"]["id"]
    assert line["tenant"] and line["status"] == 201 and line["logger"] == "synthgen.access"


def test_api_replaces_an_unusable_request_id(stack):
    answer = httpx.get(f"{stack.api_url}/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    assert re.fullmatch(r"[0-9a-f]{32}", answer.headers["x-request-id"])


def test_worker_logs_carry_the_job_and_its_tenant(stack, ran_jobs):
    job_id = ran_jobs["train"]["id"]
    lines = [line for line in _json_lines(stack.worker_log) if line.get("job_id") == job_id]
    assert {line["message"] for line in lines} >= {"job started", "job ended"}
    assert all(line["tenant"] for line in lines)


def test_a_single_process_api_serves_its_counters_and_the_job_table(app_client):
    app_client.get("/healthz")
    exposition = app_client.get("/metrics").text
    assert sample(exposition, "synthgen_http_requests_total", route="/healthz", status="200") >= 1
    assert sample(exposition, "synthgen_queue_length", queue="cpu") == 0
    assert 'synthgen_jobs{kind="train",status="queued"}' in exposition
