"""The README's curl and Python examples, run as written against the embedded stack
(`synthgen up`, as the README starts it), in the README's own order.

A block runs when an HTML comment `<!-- readme-test: NAME -->` stands just before its
fence; these are the marked blocks this test runs, and it fails when one of them is
missing (or a marked block is not named here):

- ``from-python``: "From Python" (submit, wait, download, list failed jobs)
- ``library``: "As a library (torch only)" (train, sample, save and load an engine)
- ``curl-events``: "Event stream" (submit with curl, then follow the job's events)
- ``curl-upload``: "Upload a dataset" (create, PUT to the signed URL, complete, get)
- ``sdk``: "CLI and SDK" (a short train job, its stream, artifacts, curves, alias, preview)
- ``curl-jobs``: "Run the stack" (list jobs with curl)

Blocks not marked need what a test cannot give as written: the webhook receiver's request
(``request_body_bytes``), a generated set already downloaded to ``set/`` with six
WebDataset shards, the Compose stack; `tests/e2e/test_cli_formats.py` reads generated sets.

Only what the README tells a user to set is substituted: the API's address (the README's
``127.0.0.1:8000`` or ``localhost:8000``; `synthgen up --port N` moves it, and the test's
stack listens on a free port) and ``SYNTHGEN_API_KEY`` (exported as "Using it" says). What
the README assumes a user has is made first: the demo's ``digits-ddpm`` model (here a
4-step one; `make run` trains 1,500) and a ``signs.zip`` of class folders. curl runs with
``--fail-with-body`` so that an HTTP error fails its block instead of printing a problem.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests import archives
from tests.e2e.conftest import ROOT, Stack, clean_env

RUNS = ("from-python", "library", "curl-events", "curl-upload", "sdk", "curl-jobs")
MARKED = re.compile(r"<!-- readme-test: (\S+) -->\n```(\w+)\n(.*?)\n```", re.S)
README_ADDRESSES = ("http://127.0.0.1:8000", "http://localhost:8000", "localhost:8000")
# An HTTP error answer fails the block (curl alone exits 0 on a 4xx and prints the problem).
CURL_FAILS = 'curl() { command curl --fail-with-body "$@"; }\n'
DEMO_MODEL = {
    "kind": "train",
    "engine": "ddpm",
    "dataset": "digits",
    "model_name": "digits-ddpm",
    "config": {"max_steps": 4, "batch_size": 8, "image_size": 8, "base_channels": 16},
}


def marked_blocks(text: str) -> dict[str, tuple[str, str]]:
    """Each marked block's language and code, by its name."""
    found = [(m.group(1), (m.group(2), m.group(3))) for m in MARKED.finditer(text)]
    blocks = dict(found)
    assert len(blocks) == len(found), "two README blocks are marked with the same name"
    return blocks


def test_the_marked_blocks_are_those_this_test_runs():
    blocks = marked_blocks((ROOT / "README.md").read_text())
    assert sorted(blocks) == sorted(RUNS), "README's marked blocks changed: update RUNS"
    for name, (language, _) in blocks.items():
        assert language in {"bash", "python"}, (name, language)


def run_block(name: str, stack: Stack, cwd: Path) -> str:
    language, code = marked_blocks((ROOT / "README.md").read_text())[name]
    for address in README_ADDRESSES:
        code = code.replace(address, stack.url)
    env = {**clean_env(), "SYNTHGEN_API_KEY": stack.key}
    # This tree's packages, as the user's install has them.
    paths = [str(ROOT), str(ROOT / "clients" / "python"), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    if language == "python":
        (cwd / f"{name}.py").write_text(code + "\n")
        command = [sys.executable, f"{name}.py"]
    else:
        command = ["bash", "-e", "-o", "pipefail", "-c", CURL_FAILS + code]
    done = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )  # fmt: skip
    assert done.returncode == 0, f"README block {name!r} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.mark.timeout(1500)
def test_the_readme_examples_run_as_written(shared_stack, tmp_path):
    from synthgen_client.sdk import Client

    client = Client(shared_stack.url, shared_stack.key)
    demo = client.wait(client.submit(DEMO_MODEL)["id"], poll_s=0.3, timeout_s=300)
    assert demo["status"] == "succeeded", demo["error"]
    (tmp_path / "signs.zip").write_bytes(archives.zip_bytes(archives.imagefolder_files(5)))

    run_block("from-python", shared_stack, tmp_path)
    assert (tmp_path / "out" / "manifest.csv").is_file()

    run_block("library", shared_stack, tmp_path)
    assert (tmp_path / "out" / "config.json").is_file()

    events = run_block("curl-events", shared_stack, tmp_path)
    assert "event: completed" in events and '"status":"succeeded"' in events.replace(" ", "")

    run_block("curl-upload", shared_stack, tmp_path)
    uploaded = client.datasets.wait("road signs", timeout_s=300)
    assert uploaded["status"] == "ready", uploaded

    run_block("sdk", shared_stack, tmp_path)
    assert (tmp_path / "grid.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert client.models.aliases("digits-try")

    listed = json.loads(run_block("curl-jobs", shared_stack, tmp_path))
    assert len(listed["items"]) >= 4  # the demo model, two generate jobs, the sdk's train
