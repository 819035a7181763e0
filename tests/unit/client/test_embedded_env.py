"""`synthgen up`'s worker children leave out Celery's superuser warning (`up` says it once
in a line of its own), and keep the user's own warning filters."""

from __future__ import annotations

import os
import subprocess
import sys

from synthgen_client.embedded import SILENCE_ROOT_WARNING, worker_env

# Celery's own check, in a child that believes it runs as root.
AS_ROOT = (
    "import os; os.getuid = os.geteuid = lambda: 0\n"
    "from celery.platforms import check_privileges\n"
    "check_privileges({'json'})\n"
)


def _stderr(env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", AS_ROOT], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stderr


def test_a_worker_child_does_not_print_celerys_superuser_warning():
    base = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    assert "superuser privileges" in _stderr(base)  # what the children printed, each
    assert _stderr(worker_env(base, {})) == ""


def test_the_users_warning_filters_and_thread_settings_are_kept():
    env = worker_env({"PYTHONWARNINGS": "error::DeprecationWarning", "A": "1"}, {"T": "2"})
    assert env["PYTHONWARNINGS"] == f"error::DeprecationWarning,{SILENCE_ROOT_WARNING}"
    assert env["A"] == "1" and env["T"] == "2"
    assert worker_env({"T": "9"}, {"T": "2"})["T"] == "9"  # the user's setting wins
