"""Debian's chromium driven by Playwright against the real embedded stack (`synthgen up`).

Set CONSOLE_SCREENSHOTS=bench/results/console to keep a screenshot of every page."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.e2e.conftest import Stack, start_stack, stop_stack
from tests.e2e.test_cli import TINY_TRAIN


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=shutil.which("chromium"),
            headless=True,
            args=["--no-sandbox", "--disable-gpu"],
        )
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def console_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = start_stack(tmp_path_factory.mktemp("console"))
    yield running
    stop_stack(running)


def api_wait(stack: Stack, job_id: str, timeout_s: float = 240) -> dict:
    headers = {"Authorization": f"Bearer {stack.key}"}
    deadline = time.monotonic() + timeout_s
    while True:
        job = httpx.get(f"{stack.url}/v1/jobs/{job_id}", headers=headers).json()
        if job["status"] in {"succeeded", "failed", "canceled"}:
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.3)


def api_submit(stack: Stack, body: dict) -> str:
    headers = {"Authorization": f"Bearer {stack.key}"}
    response = httpx.post(f"{stack.url}/v1/jobs", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.fixture(scope="module")
def trained(console_stack: Stack) -> dict:
    """A tiny model trained over the API: what the models page and playground show."""
    job = api_wait(console_stack, api_submit(console_stack, {**TINY_TRAIN, "model_name": "tiny"}))
    assert job["status"] == "succeeded", job["error"]
    return job


@pytest.fixture()
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert errors == [], errors  # no uncaught script error on any page


def sign_in(page: Page, stack: Stack, route: str = "") -> None:
    page.goto(f"{stack.url}/console/{route}")
    page.fill("#api-key", stack.key)
    page.press("#api-key", "Enter")
    page.wait_for_selector("#nav:not([hidden])")


def screenshot(page: Page, name: str) -> None:
    target = os.environ.get("CONSOLE_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(target) / f"{name}.png"), full_page=True)
