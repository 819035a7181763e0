"""A newcomer's CLI, against the embedded stack: datasets uploaded and used by name, the
short ids the CLI prints accepted back, an idempotent resubmit said as such, Ctrl-C in
`jobs wait` (130, the job keeps running), and a job estimated over an hour asked about."""

from __future__ import annotations

import json
import re
import signal
import subprocess

from tests import archives
from tests.e2e.conftest import SYNTHGEN, clean_env
from tests.e2e.test_cli import TINY_TRAIN, cli, new_key, one_line_error, submit


def test_a_dataset_uploaded_by_the_cli_is_used_by_name_and_listed_by_name(shared_stack, tmp_path):
    key = new_key(shared_stack)
    archive = tmp_path / "signs.zip"
    archive.write_bytes(archives.zip_bytes(archives.imagefolder_files(5)))
    done = cli("datasets", "upload", str(archive), "--name", "signs", stack=shared_stack, key=key)
    assert done.returncode == 0, done.stderr
    assert re.search(r"^status\s+ready$", done.stdout, re.M), done.stdout
    assert "upload: 1.7 KiB of 1.7 KiB" in done.stderr and "validate" in done.stderr
    listed = cli("datasets", "ls", stack=shared_stack, key=key)
    assert listed.stdout.splitlines()[1].split()[:3][0] == "signs"
    shown = json.loads(
        cli("datasets", "get", "signs", "--json", stack=shared_stack, key=key).stdout
    )
    job_id = submit(shared_stack, {**TINY_TRAIN, "dataset": "signs", "model_name": "by-name"}, key)
    jobs = cli("jobs", "list", stack=shared_stack, key=key).stdout
    assert "ddpm on signs:train → by-name" in jobs
    assert f"validate dataset signs ({shown['id']})" in jobs and "None vs None" not in jobs
    cli("jobs", "wait", job_id[:8], "-q", stack=shared_stack, key=key)
    removed = cli("datasets", "rm", "signs", stack=shared_stack, key=key)
    assert removed.returncode == 0 and f"deleted dataset signs ({shown['id']})" in removed.stdout
    gone = cli("datasets", "get", "signs", stack=shared_stack, key=key)
    assert gone.returncode == 2 and "no dataset named 'signs'" in one_line_error(gone)


def test_short_ids_are_accepted_and_an_ambiguous_one_is_a_clear_error(shared_stack):
    key = new_key(shared_stack)
    job_id = submit(shared_stack, TINY_TRAIN, key)
    got = cli("jobs", "get", job_id[:8], "--json", stack=shared_stack, key=key)
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["id"] == job_id
    submit(shared_stack, TINY_TRAIN, key)
    ambiguous = cli("jobs", "get", "", stack=shared_stack, key=key)  # every id starts with ""
    assert ambiguous.returncode == 2
    assert "starts 2 job ids" in one_line_error(ambiguous)
    missing = cli("jobs", "get", "zzzz", stack=shared_stack, key=key)
    assert missing.returncode == 2 and "no job id starts with 'zzzz'" in missing.stderr


def test_an_idempotent_resubmit_says_it_is_an_existing_job(shared_stack):
    key = new_key(shared_stack)
    body = json.dumps(TINY_TRAIN)
    args = ("jobs", "submit", "-", "--idempotency-key", "k-1")
    first = cli(*args, stack=shared_stack, key=key, stdin=body)
    again = cli(*args, stack=shared_stack, key=key, stdin=body)
    assert first.stdout.startswith("submitted train job")
    assert (
        again.stdout.startswith("existing train job")
        and "nothing new was submitted" in again.stdout
    )
    assert first.stdout.split()[3] == again.stdout.split()[3]  # the same job id


def test_ctrl_c_in_jobs_wait_exits_130_and_the_job_keeps_running(shared_stack):
    key = new_key(shared_stack)
    long = {**TINY_TRAIN, "config": {**TINY_TRAIN["config"], "max_steps": 100_000}}
    job_id = submit(shared_stack, long, key)
    env = {**clean_env(), "SYNTHGEN_API_URL": shared_stack.url, "SYNTHGEN_API_KEY": key}
    waiting = subprocess.Popen(
        [SYNTHGEN, "jobs", "wait", job_id], env=env, cwd=shared_stack.cwd,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    # The progress line on stderr says it is following the job; then Ctrl-C.
    assert waiting.stderr is not None
    first = waiting.stderr.readline()
    assert job_id[:8] in first, first
    waiting.send_signal(signal.SIGINT)
    _, err = waiting.communicate(timeout=30)
    assert waiting.returncode == 130, err
    assert f"job {job_id} keeps running" in err and f"synthgen jobs cancel {job_id[:8]}" in err
    status = json.loads(cli("jobs", "get", job_id, "--json", stack=shared_stack, key=key).stdout)
    assert status["status"] in {"queued", "running"}
    cli("jobs", "cancel", job_id, stack=shared_stack, key=key)


def test_a_job_estimated_over_an_hour_needs_yes_without_a_terminal(shared_stack):
    key = new_key(shared_stack)
    done = cli("jobs", "wait", submit(shared_stack, TINY_TRAIN, key), stack=shared_stack, key=key)
    assert done.returncode == 0, done.stderr  # a finished ddpm job: the speed to estimate from
    long = {**TINY_TRAIN, "config": {**TINY_TRAIN["config"], "max_steps": 1_000_000}}
    before = len(json.loads(cli("jobs", "list", "--json", stack=shared_stack, key=key).stdout))
    refused = cli("jobs", "submit", "-", stack=shared_stack, key=key, stdin=json.dumps(long))
    assert refused.returncode == 2
    error = one_line_error(refused)
    assert "estimated run time" in error and "pass --yes" in error
    after = len(json.loads(cli("jobs", "list", "--json", stack=shared_stack, key=key).stdout))
    assert after == before  # nothing was submitted
    accepted = cli(
        "jobs", "submit", "-", "--yes", stack=shared_stack, key=key, stdin=json.dumps(long)
    )
    assert accepted.returncode == 0, accepted.stderr
    cli("jobs", "cancel", accepted.stdout.split()[3], stack=shared_stack, key=key)
