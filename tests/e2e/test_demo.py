"""`make run` (`synthgen demo`) leaves the user a key that sees the model it trained."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import SYNTHGEN, clean_env, free_port, start_stack, stop_stack

DEMO_TIMEOUT_S = 360  # alone it takes ~70 s here, ~95 s with both cores busy


def run_demo(cwd: Path) -> tuple[int, str]:
    """`synthgen demo` as a user runs it; its exit status and output. Past the timeout the
    demo's whole process group goes (its stack and workers hold the output pipe open, so
    killing the demo alone would leave the read waiting) and the test fails with what the
    demo and its stack printed."""
    demo = subprocess.Popen(
        [SYNTHGEN, "demo", "--steps", "4", "--count", "20", "--port", str(free_port())],
        cwd=cwd, env={**clean_env(), "PYTHONUNBUFFERED": "1"}, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        output, _ = demo.communicate(timeout=DEMO_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(demo.pid, signal.SIGKILL)
        output, _ = demo.communicate()
        pytest.fail(f"the demo did not end in {DEMO_TIMEOUT_S} s; it printed:\n{output[-4000:]}")
    return demo.returncode, output


@pytest.mark.timeout(DEMO_TIMEOUT_S + 180)  # the demo, then a stack of its own
def test_demo_leaves_a_key_of_the_tenant_that_owns_the_demo_model(tmp_path):
    returncode, output = run_demo(tmp_path)
    assert returncode == 0, output[-4000:]
    assert "(16x16, 4 steps;" in output  # a step count, the same on every machine
    key_file = tmp_path / ".synthgen" / "api-key"
    assert "export SYNTHGEN_API_KEY=$(cat .synthgen/api-key)" in output
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"

    # What the README says next: `synthgen up`, then use that key.
    stack = start_stack(tmp_path)
    try:
        env = {**clean_env(), "SYNTHGEN_API_URL": stack.url,
               "SYNTHGEN_API_KEY": key_file.read_text().strip()}  # fmt: skip
        models = subprocess.run(
            [SYNTHGEN, "models", "--json"], cwd=tmp_path, env=env, capture_output=True,
            text=True, check=True,
        )  # fmt: skip
        assert [m["name"] for m in json.loads(models.stdout)] == ["digits-ddpm"]
        gen = subprocess.run(
            [SYNTHGEN, "jobs", "submit", "-", "--json"], cwd=tmp_path, env=env,
            input=json.dumps({"kind": "generate", "model": "digits-ddpm", "count": 4}),
            capture_output=True, text=True,
        )  # fmt: skip
        assert gen.returncode == 0, gen.stderr
    finally:
        stop_stack(stack)
