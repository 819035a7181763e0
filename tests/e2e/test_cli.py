"""The real `synthgen` entry point against a running embedded stack: what a new user
types, what they see, and the exit codes a script relies on."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import SYNTHGEN, Stack, clean_env, free_port

TINY_TRAIN = {
    "kind": "train",
    "engine": "ddpm",
    "dataset": "shapes",
    "model_name": "cli",
    "config": {"max_steps": 4, "batch_size": 8, "image_size": 8, "base_channels": 16},
}


def cli(*args: str, stack: Stack | None = None, key: str | None = None, cwd: Path | None = None,
        stdin: str | None = None) -> subprocess.CompletedProcess[str]:  # fmt: skip
    env = clean_env()
    if stack is not None:
        env["SYNTHGEN_API_URL"] = stack.url
        env["SYNTHGEN_API_KEY"] = key or stack.key
    return subprocess.run(
        [SYNTHGEN, *args], cwd=cwd or (stack.cwd if stack else None), env=env, input=stdin,
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("synthgen: error: ")
    return lines[0]


def new_key(stack: Stack) -> str:
    done = cli("keys", "create", "--tenant", f"t-{uuid.uuid4().hex[:8]}", cwd=stack.cwd)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def submit(stack: Stack, body: dict, key: str | None = None) -> str:
    # --yes: a long job after a finished one is estimated over an hour, and without a
    # terminal the CLI then refuses to ask (test_cli_newcomer tests that refusal).
    args = ("jobs", "submit", "-", "--json", "--yes")
    done = cli(*args, stack=stack, key=key, stdin=json.dumps(body))
    assert done.returncode == 0, done.stderr
    return str(json.loads(done.stdout)["id"])


def test_bad_json_on_stdin_is_a_one_line_usage_error_and_submits_nothing(shared_stack):
    key = new_key(shared_stack)
    done = cli("jobs", "submit", "-", stack=shared_stack, key=key,
               stdin='{"kind": "train", "engine": ')  # fmt: skip
    assert done.returncode == 2
    assert "not valid JSON" in one_line_error(done)
    listed = cli("jobs", "list", "--json", stack=shared_stack, key=key)
    assert json.loads(listed.stdout) == []


def test_an_unreachable_api_is_a_one_line_network_error(tmp_path):
    env_url = f"http://127.0.0.1:{free_port()}"
    done = cli("jobs", "list", "--api-url", env_url, "--api-key", "sg_x", cwd=tmp_path)
    assert done.returncode == 5
    assert "cannot reach the API" in one_line_error(done)


def test_keys_create_away_from_the_stack_says_where_to_run_it(tmp_path):
    done = cli("keys", "create", "--tenant", "me", cwd=tmp_path)
    assert done.returncode == 2
    line = one_line_error(done)
    assert "no synthgen database" in line and "SYNTHGEN_DATABASE_URL" in line
    assert not (tmp_path / ".synthgen").exists()  # nothing created on the way


def test_up_on_a_busy_port_fails_before_announcing_itself(shared_stack, tmp_path):
    done = cli("up", "--port", str(shared_stack.port), cwd=tmp_path)
    assert done.returncode == 5
    assert "--port" in one_line_error(done)
    assert "API on" not in done.stdout


def test_an_api_error_is_one_line_with_the_status(shared_stack):
    done = cli("jobs", "get", str(uuid.uuid4()), stack=shared_stack)
    assert done.returncode == 3
    assert "404" in one_line_error(done)


def test_global_options_are_accepted_after_the_subcommand_and_filters_apply(shared_stack):
    key = new_key(shared_stack)
    job_id = submit(shared_stack, TINY_TRAIN, key)
    done = cli("jobs", "list", "--kind", "train", "--json", "--api-url", shared_stack.url,
               "--api-key", key, cwd=shared_stack.cwd)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert [j["id"] for j in json.loads(done.stdout)] == [job_id]
    done = cli("--json", "jobs", "list", "--kind", "generate", stack=shared_stack, key=key)
    assert json.loads(done.stdout) == []


def test_jobs_list_prints_a_table_and_says_when_it_shows_only_part(shared_stack):
    key = new_key(shared_stack)
    ids = [submit(shared_stack, TINY_TRAIN, key) for _ in range(3)]
    done = cli("jobs", "list", "--limit", "2", stack=shared_stack, key=key)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[0].split()[:3] == ["ID", "KIND", "STATUS"]
    assert [line.split()[0] for line in lines[1:]] == [ids[2], ids[1]]
    assert "more exist" in done.stderr
    every = cli("jobs", "list", "--all", stack=shared_stack, key=key)
    assert len(every.stdout.strip().splitlines()) == 4 and "more exist" not in every.stderr


def test_wait_shows_progress_then_the_job_and_exits_0_on_success(shared_stack):
    job_id = submit(shared_stack, TINY_TRAIN)
    done = cli("jobs", "wait", job_id, "--poll", "0.2", stack=shared_stack)
    assert done.returncode == 0, done.stderr
    assert f"{job_id[:8]} train" in done.stderr  # the live line (one per change on a pipe)
    assert "status     succeeded" in done.stdout
    assert "model      cli:" in done.stdout


def test_wait_exits_4_when_the_job_is_canceled(shared_stack):
    long_train = {**TINY_TRAIN, "config": {**TINY_TRAIN["config"], "max_steps": 100_000}}
    job_id = submit(shared_stack, long_train)
    assert cli("jobs", "cancel", job_id, stack=shared_stack).returncode == 0
    done = cli("jobs", "wait", job_id, "--poll", "0.2", stack=shared_stack)
    assert done.returncode == 4
    assert "status     canceled" in done.stdout


@pytest.fixture(scope="module")
def big_png_job(shared_stack) -> str:
    """A generate job of 1,500 PNGs: more artifacts than one page of the listing."""
    train_id = submit(shared_stack, {**TINY_TRAIN, "model_name": "pages"})
    assert cli("jobs", "wait", train_id, "-q", stack=shared_stack).returncode == 0
    job_id = submit(
        shared_stack,
        {"kind": "generate", "model": "pages", "count": 1500, "config": {"steps": 2}},
    )
    done = cli("jobs", "wait", job_id, "-q", stack=shared_stack)
    assert done.returncode == 0, done.stdout + done.stderr
    return job_id


def listing(stack: Stack, job_id: str) -> list[dict]:
    items, cursor = [], None
    while True:
        page = httpx.get(
            f"{stack.url}/v1/jobs/{job_id}/artifacts",
            params={"cursor": cursor} if cursor else {},
            headers={"Authorization": f"Bearer {stack.key}"},
        ).json()
        items += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return items


def test_download_saves_every_artifact_past_the_first_page(shared_stack, big_png_job, tmp_path):
    out = tmp_path / "out"
    done = cli("jobs", "artifacts", big_png_job, "--download", str(out), stack=shared_stack)
    assert done.returncode == 0, done.stderr
    expected = {a["name"]: a["size"] for a in listing(shared_stack, big_png_job)}
    saved = {p.relative_to(out).as_posix(): p.stat().st_size for p in out.rglob("*")
             if p.is_file()}  # fmt: skip
    assert saved == expected
    assert sum(name.endswith(".png") and name != "grid.png" for name in saved) == 1500
    assert "labels.csv" in saved


def test_download_that_does_not_match_the_listing_exits_6(shared_stack, big_png_job, tmp_path):
    # A store object shorter than the listing says (a truncated upload, a bad disk).
    stored = sorted((shared_stack.home / "store" / "jobs" / big_png_job).rglob("*.png"))[-1]
    original = stored.read_bytes()
    stored.write_bytes(original[:10])
    try:
        done = cli("jobs", "artifacts", big_png_job, "--download", str(tmp_path / "o"), "-q",
                   stack=shared_stack)  # fmt: skip
    finally:
        stored.write_bytes(original)
    assert done.returncode == 6
    assert stored.name in one_line_error(done)


def test_webhooks_secret_prints_the_tenant_secret_and_rotate_makes_a_new_one(shared_stack):
    key = new_key(shared_stack)
    first = cli("webhooks", "secret", stack=shared_stack, key=key)
    assert first.returncode == 0, first.stderr
    secret = first.stdout.strip()
    assert secret.startswith("whsec_")
    assert cli("webhooks", "secret", stack=shared_stack, key=key).stdout.strip() == secret
    rotated = cli("webhooks", "secret", "--rotate", "--json", stack=shared_stack, key=key)
    assert rotated.returncode == 0, rotated.stderr
    new = json.loads(rotated.stdout)["key"]
    assert new.startswith("whsec_") and new != secret


def test_jobs_events_follows_the_stream_until_the_job_ends(shared_stack):
    job_id = submit(shared_stack, TINY_TRAIN)
    done = cli("jobs", "events", job_id, "--json", stack=shared_stack)
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert events[0]["type"] == "start" or events[0]["status"] in {"queued", "running"}
    assert events[-1]["type"] == "completed" and events[-1]["status"] == "succeeded"
    assert all(e["id"] == job_id for e in events)
