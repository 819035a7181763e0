"""`make run` (`synthgen demo`) leaves the user a key that sees the model it trained."""

from __future__ import annotations

import json
import subprocess

from tests.e2e.conftest import SYNTHGEN, clean_env, free_port, start_stack, stop_stack


def test_demo_leaves_a_key_of_the_tenant_that_owns_the_demo_model(tmp_path):
    done = subprocess.run(
        [SYNTHGEN, "demo", "--max-seconds", "2", "--count", "20", "--port", str(free_port())],
        cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    key_file = tmp_path / ".synthgen" / "api-key"
    assert "export SYNTHGEN_API_KEY=$(cat .synthgen/api-key)" in done.stdout
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
