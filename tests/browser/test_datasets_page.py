"""The console's datasets page: a file uploaded through it (create, PUT to the signed URL,
complete, validation) is listed by name as ready with its classes; a refused upload shows
the validation's reason as it is; a name already taken is an error beside the name; delete
removes it."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from playwright.sync_api import Page, expect

from tests import archives
from tests.browser.conftest import screenshot, sign_in
from tests.e2e.conftest import Stack


def _datasets(stack: Stack) -> dict[str, dict]:
    headers = {"Authorization": f"Bearer {stack.key}"}
    items = httpx.get(f"{stack.url}/v1/datasets", headers=headers).json()["items"]
    return {d["name"]: d for d in items}


def _row(page: Page, name: str):
    return page.locator("#datasets-list tbody tr").filter(
        has=page.locator(".dataset-name", has_text=name)
    )


def _upload(page: Page, path, name: str | None = None) -> None:
    page.set_input_files("#ds-file", str(path))
    if name is not None:
        page.fill("#ds-name", name)
    page.click("#upload-form button[type=submit]")


@pytest.fixture()
def datasets_page(page: Page, console_stack: Stack) -> Page:
    sign_in(page, console_stack)
    page.goto(f"{console_stack.url}/console/#/datasets")
    page.wait_for_selector("#upload-form")
    return page


def test_an_upload_through_the_page_is_listed_by_name_as_ready(
    datasets_page, console_stack, tmp_path
):
    page = datasets_page
    archive = tmp_path / "shapes-small.zip"
    archive.write_bytes(archives.zip_bytes(archives.imagefolder_files(5)))
    page.set_input_files("#ds-file", str(archive))
    expect(page.locator("#ds-name")).to_have_value("shapes-small")  # named from the file
    page.click("#upload-form button[type=submit]")
    outcome = page.locator("#upload-outcome .ok-box")
    expect(outcome).to_contain_text("shapes-small is ready: 10 images in 2 classes", timeout=60_000)
    stored = _datasets(console_stack)["shapes-small"]
    assert stored["status"] == "ready" and stored["size"] == archive.stat().st_size
    row = _row(page, "shapes-small")
    expect(row.locator(".badge")).to_have_text("ready")
    cells = row.locator("td").all_inner_texts()
    assert cells[2] == "10" and cells[3] == "circle, square" and cells[4] == "1.7 KiB"
    screenshot(page, "datasets")


def test_a_refused_upload_shows_the_reason_plainly(datasets_page, console_stack, tmp_path):
    page = datasets_page
    flat = tmp_path / "flat.zip"  # images with no class folders
    flat.write_bytes(archives.zip_bytes({"a.png": archives.png(10), "b.png": archives.png(20)}))
    _upload(page, flat)
    error = page.locator("#upload-outcome .error-box")
    expect(error).to_contain_text("flat is invalid:", timeout=60_000)
    reason = _datasets(console_stack)["flat"]["error"]["message"]
    assert "not in a class folder" in reason
    assert error.inner_text() == f"flat is invalid: {reason}"
    row = _row(page, "flat")
    expect(row.locator(".badge")).to_have_text("invalid")
    expect(row.locator(".field-error")).to_have_text(reason)


def test_a_name_already_taken_is_shown_beside_the_name_and_nothing_is_uploaded(
    datasets_page, console_stack, tmp_path
):
    page = datasets_page
    first = tmp_path / "twice.zip"
    first.write_bytes(archives.zip_bytes(archives.imagefolder_files(2)))
    _upload(page, first)
    expect(page.locator("#upload-outcome .ok-box")).to_contain_text(
        "twice is ready", timeout=60_000
    )
    _upload(page, first, name="twice")
    expect(page.locator("#e-name")).to_contain_text("twice")
    expect(page.locator("#ds-name")).to_have_attribute("aria-invalid", "true")
    assert sum(d == "twice" for d in _datasets(console_stack)) == 1


def test_delete_removes_the_dataset(datasets_page, console_stack, tmp_path):
    page = datasets_page
    doomed = tmp_path / "doomed.npz"
    np.savez(doomed, images=np.zeros((10, 8, 8), np.uint8), labels=np.arange(10) % 2)
    _upload(page, doomed)
    expect(page.locator("#upload-outcome .ok-box")).to_contain_text(
        "doomed is ready", timeout=60_000
    )
    page.once("dialog", lambda dialog: dialog.accept())
    _row(page, "doomed").get_by_role("button", name="Delete dataset doomed").click()
    expect(_row(page, "doomed")).to_have_count(0)
    assert "doomed" not in _datasets(console_stack)
