"""The page of a job that has finished, as a person opens it later: its sample grid,
artifacts and charts are there (not "appears when the job has finished"), the charts run
in step order, the curves cost one request and nothing is answered 429, and the log shows
when each event happened."""

from __future__ import annotations

import json
import re

import httpx
import pytest
from playwright.sync_api import Page, Response, expect

from tests.browser.conftest import api_submit, api_wait, screenshot, sign_in
from tests.e2e.conftest import Stack

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def finished_train(console_stack: Stack) -> dict:
    """A train job long enough for several progress events (each one a replayed event
    when its page opens), scored while it trains (keep-best: evaluations at 25, 50, 60)."""
    body = {
        "kind": "train",
        "engine": "ddpm",
        "dataset": "shapes",
        "model_name": "finished",
        "config": {
            "max_steps": 60,
            "batch_size": 8,
            "image_size": 8,
            "base_channels": 16,
            "eval_every": 25,
        },
    }
    job = api_wait(console_stack, api_submit(console_stack, body))
    assert job["status"] == "succeeded", job["error"]
    return job


class Seen:
    """Every API response the page got."""

    def __init__(self, page: Page) -> None:
        self.responses: list[tuple[str, int]] = []
        page.on("response", self._add)

    def _add(self, response: Response) -> None:
        self.responses.append((response.url, response.status))

    def to(self, fragment: str) -> list[tuple[str, int]]:
        return [r for r in self.responses if fragment in r[0]]

    @property
    def refused(self) -> list[tuple[str, int]]:
        return [r for r in self.responses if r[1] == 429]


def _open(page: Page, stack: Stack, job_id: str) -> Seen:
    sign_in(page, stack)
    seen = Seen(page)
    page.goto(f"{stack.url}/console/#/jobs/{job_id}")
    page.wait_for_selector(".job-head .badge.succeeded")
    return seen


def _artifact_names(page: Page) -> set[str]:
    page.wait_for_selector("#artifacts table")
    return set(page.locator("#artifacts a").all_inner_texts())


def _grid_shown(page: Page) -> None:
    grid = page.wait_for_selector("#grid-image")
    page.wait_for_function("() => document.querySelector('#grid-image').complete")
    assert grid.evaluate("img => img.naturalWidth") > 0


def _events(stack: Stack, job_id: str) -> list[dict]:
    headers = {"Authorization": f"Bearer {stack.key}"}
    with httpx.stream("GET", f"{stack.url}/v1/jobs/{job_id}/events", headers=headers) as r:
        lines = [line for line in r.iter_lines() if line.startswith("data:")]
    return [json.loads(line[5:]) for line in lines]


def test_a_finished_train_jobs_page_shows_its_grid_curves_and_artifacts(
    page, console_stack, finished_train
):
    seen = _open(page, console_stack, finished_train["id"])
    _grid_shown(page)
    assert {"grid.png", "metrics.jsonl"} <= _artifact_names(page)
    page.wait_for_selector("#curves figure")
    charts = page.locator("#curves figure").evaluate_all("els => els.map(e => e.dataset.key)")
    assert {"loss", "lr", "grad_norm", "step_time_s"} <= set(charts)
    # The held-out scores are charts too, one point per evaluation.
    assert {"eval_fd", "eval_label_agreement", "best_step"} <= set(charts)
    fd = page.locator('#curves figure[data-key="eval_fd"] path').get_attribute("d")
    assert len(re.findall(r"[ML]", fd)) == 3, fd
    # Each line goes left to right: its points are in step order.
    for d in page.locator("#curves path").evaluate_all("els => els.map(e => e.getAttribute('d'))"):
        xs = [float(x) for x in re.findall(r"[ML]([\d.]+),", d)]
        assert len(xs) > 2 and xs == sorted(xs), d
    page.wait_for_load_state("networkidle")
    assert len(seen.to(f"/v1/jobs/{finished_train['id']}/curves")) == 1
    assert seen.refused == []
    assert "appears when the job has finished" not in page.locator("#samples").inner_text()
    screenshot(page, "finished-train-job")


def test_the_log_shows_when_each_event_happened_not_when_the_page_opened(
    page, console_stack, finished_train
):
    events = _events(console_stack, finished_train["id"])
    _open(page, console_stack, finished_train["id"])
    page.wait_for_function(
        "() => document.querySelector('#job-log').textContent.includes('succeeded')"
    )
    log = page.locator("#job-log").inner_text().splitlines()
    started = page.evaluate("at => new Date(at).toLocaleTimeString()", events[0]["event_at"])
    ended = page.evaluate("at => new Date(at).toLocaleTimeString()", events[-1]["event_at"])
    assert log[0] == f"{started}  status running"
    assert any(line == f"{ended}  status succeeded" for line in log), log


def test_a_finished_generate_jobs_page_shows_its_grid_and_images(page, console_stack, trained):
    body = {"kind": "generate", "model": "tiny", "count": 12, "config": {"steps": 2}}
    job = api_wait(console_stack, api_submit(console_stack, body))
    assert job["status"] == "succeeded", job["error"]
    seen = _open(page, console_stack, job["id"])
    _grid_shown(page)
    names = _artifact_names(page)
    assert "grid.png" in names and sum(n.endswith(".png") for n in names) > 1
    page.wait_for_load_state("networkidle")
    assert seen.refused == [] and seen.to("/curves") == [] and seen.to("/metrics") == []
    screenshot(page, "finished-generate-job")


def test_a_finished_evaluate_jobs_page_shows_its_report_and_how_features_were_chosen(
    page, console_stack, trained
):
    body = {"kind": "evaluate", "model": "tiny", "reference": "shapes:test", "count": 10,
            "metrics": ["fid", "class_coverage"], "config": {"classifier_epochs": 1}}  # fmt: skip
    job = api_wait(console_stack, api_submit(console_stack, body))
    assert job["status"] == "succeeded", json.dumps(job["error"])
    seen = _open(page, console_stack, job["id"])
    assert {"report.html", "report.json"} <= _artifact_names(page)
    frame = page.wait_for_selector("#report-frame").content_frame()
    frame.wait_for_selector("h2:has-text('Metrics')")
    expect(page.locator("#samples")).to_contain_text("in the evaluation report")
    expect(page.locator("#features-note")).to_contain_text('features "auto"')
    page.wait_for_load_state("networkidle")
    assert seen.refused == []
    screenshot(page, "finished-evaluate-job")


def test_a_failed_artifact_listing_is_an_error_with_a_retry_not_not_yet(
    page, console_stack, finished_train
):
    sign_in(page, console_stack)
    failures = {"left": 1}

    def fail_once(route):
        if failures["left"]:
            failures["left"] -= 1
            problem = {"title": "Service Unavailable", "detail": "storage down"}
            route.fulfill(status=503, content_type=PROBLEM, body=json.dumps(problem))
        else:
            route.continue_()

    page.route(re.compile(r".*/v1/jobs/[^/]+/artifacts.*"), fail_once)
    page.goto(f"{console_stack.url}/console/#/jobs/{finished_train['id']}")
    expect(page.locator("#artifacts .error-box")).to_contain_text("storage down")
    expect(page.locator("#samples .error-box")).to_contain_text("Could not list")
    page.locator("#artifacts button", has_text="Try again").click()
    _grid_shown(page)
    assert "grid.png" in _artifact_names(page)


def test_curves_answered_429_are_read_again_after_retry_after(page, console_stack, finished_train):
    sign_in(page, console_stack)
    answers: list[int] = []

    def too_many_once(route):
        if not answers:
            answers.append(429)
            problem = {"title": "Too Many Requests", "detail": "slow down"}
            headers = {"Retry-After": "1"}
            route.fulfill(
                status=429, headers=headers, content_type=PROBLEM, body=json.dumps(problem)
            )
        else:
            answers.append(200)
            route.continue_()

    page.route(re.compile(r".*/v1/jobs/[^/]+/curves.*"), too_many_once)
    page.goto(f"{console_stack.url}/console/#/jobs/{finished_train['id']}")
    page.wait_for_selector("#curves figure")
    assert answers == [429, 200]
    assert "Too many" not in page.locator("#job-log").inner_text()
