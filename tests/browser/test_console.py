"""The web console in a real browser: a person signs in, trains a model from the form and
watches it, looks at its samples, a field error, a preview and a report."""

from __future__ import annotations

import json

from playwright.sync_api import expect

from tests.browser.conftest import api_submit, api_wait, screenshot, sign_in

TRAIN_FIELDS = {
    "f-dataset": "shapes",
    "f-model_name": "web",
    "f-config.max_steps": "80",
    "f-config.batch_size": "8",
    "f-config.image_size": "8",
    "f-config.base_channels": "16",
}


def test_the_key_stays_in_this_tabs_session_storage_and_out_of_urls(page, console_stack):
    page.goto(f"{console_stack.url}/console/")
    screenshot(page, "sign-in")
    sign_in(page, console_stack)
    stored = page.evaluate("() => [sessionStorage.getItem('synthgen.apiKey'), localStorage.length]")
    assert stored == [console_stack.key, 0]
    assert console_stack.key not in page.url
    assert page.context.cookies() == []


def test_a_wrong_key_is_refused_beside_the_field(page, console_stack):
    page.goto(f"{console_stack.url}/console/")
    page.fill("#api-key", "sg_not-a-key")
    page.click("#sign-in-form button")
    expect(page.locator("#api-key-error")).to_have_text("That key is not valid.")
    assert page.evaluate("() => sessionStorage.length") == 0


def test_a_train_job_from_the_form_shows_live_progress_then_its_grid(page, console_stack):
    sign_in(page, console_stack, "#/submit")
    for field, value in TRAIN_FIELDS.items():
        control = page.locator(f'[id="{field}"]')
        # A field whose schema lists its values (an engine's image sizes) is a <select>.
        if control.evaluate("el => el.tagName") == "SELECT":
            control.select_option(value)
        else:
            control.fill(value)
    page.click("#job-form button[type=submit]")
    page.wait_for_url("**/console/#/jobs/*")
    # Live: while it runs the bar moves between 0 and 100.
    page.wait_for_function(
        "() => { const p = document.querySelector('.job-head progress');"
        " return p && p.value > 0 && p.value < 100; }",
        timeout=120_000,
    )
    screenshot(page, "job-running")
    page.wait_for_selector(".job-head .badge.succeeded", timeout=240_000)
    grid = page.wait_for_selector("#grid-image")
    page.wait_for_function("() => document.querySelector('#grid-image').complete")
    assert grid.evaluate("img => img.naturalWidth") > 0
    assert page.locator(".job-head progress").get_attribute("value") == "100"
    charts = page.locator("#curves figure").evaluate_all("els => els.map(e => e.dataset.key)")
    assert {"loss", "lr", "grad_norm", "step_time_s"} <= set(charts)
    assert page.locator("#artifacts a", has_text="metrics.jsonl").count() == 1
    screenshot(page, "job-succeeded")


def test_the_jobs_list_links_each_job_by_its_short_id(page, console_stack, trained):
    sign_in(page, console_stack)
    link = page.locator(f'#jobs-table a[href="#/jobs/{trained["id"]}"]')
    assert link.inner_text() == trained["id"][:8]
    screenshot(page, "jobs")
    link.click()
    page.wait_for_selector(".job-head .badge.succeeded")
    assert trained["id"] in page.locator(".job-head").inner_text()


def test_a_bad_value_shows_the_apis_error_beside_its_field(page, console_stack):
    sign_in(page, console_stack, "#/submit")
    before = page.evaluate("() => fetch('/v1/jobs?limit=200', {headers: {Authorization: "
                           "'Bearer ' + sessionStorage.getItem('synthgen.apiKey')}})"
                           ".then(r => r.json()).then(p => p.items.length)")  # fmt: skip
    page.fill('[id="f-dataset"]', "shapes")
    page.fill('[id="f-model_name"]', "bad")
    page.fill('[id="f-config.max_steps"]', "0")
    page.click("#job-form button[type=submit]")
    error = page.wait_for_selector('[data-field="config.max_steps"] .field-error:not([hidden])')
    assert "greater than or equal to 1" in error.inner_text()
    assert page.locator('[id="f-config.max_steps"]').get_attribute("aria-invalid") == "true"
    assert page.evaluate("() => document.activeElement.id") == "f-config.max_steps"
    screenshot(page, "submit-field-error")
    after = page.evaluate("() => fetch('/v1/jobs?limit=200', {headers: {Authorization: "
                          "'Bearer ' + sessionStorage.getItem('synthgen.apiKey')}})"
                          ".then(r => r.json()).then(p => p.items.length)")  # fmt: skip
    assert after == before


def test_the_playground_draws_a_preview_of_the_chosen_classes(page, console_stack, trained):
    version = trained["result"]["model_version"]
    sign_in(page, console_stack, f"#/playground?model={version['name']}:{version['version']}")
    page.wait_for_selector("#pg-classes input")
    boxes = page.locator("#pg-classes input[type=checkbox]")
    for i in range(2, boxes.count()):
        boxes.nth(i).uncheck()
    page.fill("#pg-steps", "2")
    page.click("#pg-go")
    image = page.wait_for_selector("#pg-image", timeout=120_000)
    page.wait_for_function("() => document.querySelector('#pg-image').complete")
    # Two classes → two rows of 8×8 images with 2 px gutters.
    assert image.evaluate("img => img.naturalHeight") == 2 * (8 + 2) + 2
    screenshot(page, "playground")


def test_the_models_page_shows_versions_lineage_and_sets_an_alias(page, console_stack, trained):
    sign_in(page, console_stack, "#/models")
    page.click("text=tiny")
    page.wait_for_selector("#alias-name")
    assert page.locator(f'a[href="#/jobs/{trained["id"]}"]').count() == 1  # lineage
    expect(page.locator("td.privacy").first).to_contain_text("not differentially private")
    page.fill("#alias-name", "prod")
    page.click("text=Set alias")
    expect(page.locator("code", has_text="tiny@prod")).to_be_visible()
    screenshot(page, "model")


def test_an_evaluate_jobs_page_embeds_its_report(page, console_stack, trained):
    body = {"kind": "evaluate", "model": "tiny", "reference": "shapes:test", "count": 10,
            "metrics": ["fid", "memorization"], "config": {"features": "classifier"}}  # fmt: skip
    job = api_wait(console_stack, api_submit(console_stack, body))
    assert job["status"] == "succeeded", json.dumps(job["error"])
    sign_in(page, console_stack, f"#/jobs/{job['id']}")
    expect(page.locator("#privacy-audit")).to_contain_text("held-out real images")
    frame = page.wait_for_selector("#report-frame").content_frame()
    frame.wait_for_selector("h2:has-text('Metrics')")
    assert "Evaluation of tiny:1" in frame.locator("h1").inner_text()
    frame.wait_for_selector("h3:has-text('The most copy-like synthetic images')")
    screenshot(page, "report")


def test_keyboard_alone_signs_in_and_moves_between_pages(page, console_stack):
    page.goto(f"{console_stack.url}/console/")
    page.wait_for_selector("#sign-in:not([hidden])")
    # Focus moves to each page's heading once the page is drawn (wait for it, not race it).
    page.wait_for_function("() => document.activeElement.textContent === 'Sign in'")
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == "api-key"
    page.keyboard.type(console_stack.key)
    page.keyboard.press("Enter")
    page.wait_for_selector("#nav:not([hidden])")
    page.focus("#nav a[href='#/models']")
    page.keyboard.press("Enter")
    page.wait_for_selector("h1:has-text('Models')")
    page.wait_for_function(
        "() => document.activeElement.tagName === 'H1'"
        " && document.activeElement.textContent.includes('Models')"
    )


def test_pages_fit_a_narrow_screen(page, console_stack, trained):
    page.set_viewport_size({"width": 375, "height": 740})
    sign_in(page, console_stack)
    routes = ("#/jobs", f"#/jobs/{trained['id']}", "#/submit", "#/datasets", "#/models")
    for route in (*routes, "#/playground"):
        page.goto(f"{console_stack.url}/console/{route}")
        page.wait_for_selector("#view h1")
        page.wait_for_load_state("networkidle")
        overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, (route, overflow)
    screenshot(page, "narrow-playground")
