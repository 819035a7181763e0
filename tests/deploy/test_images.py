"""Both Dockerfiles pass hadolint at warning level, run as a non-root user, and the API
image installs the `api` extra only; .dockerignore lets in nothing but the sources."""

import re
import subprocess

import pytest

from tests.tools import ROOT, venv_tool


@pytest.mark.parametrize("dockerfile", ["Dockerfile.api", "Dockerfile.worker"])
def test_dockerfile_passes_hadolint(dockerfile):
    done = subprocess.run(
        [venv_tool("hadolint"), "--failure-threshold", "warning", "--no-color", dockerfile],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("dockerfile", ["Dockerfile.api", "Dockerfile.worker"])
def test_image_runs_as_a_numeric_non_root_user(dockerfile):
    users = re.findall(r"^USER (\S+)$", (ROOT / dockerfile).read_text(), re.MULTILINE)
    assert users and users[-1].split(":")[0].isdigit() and users[-1].split(":")[0] != "0"


def test_api_image_installs_the_api_extra_and_no_worker_code():
    text = (ROOT / "Dockerfile.api").read_text()
    assert re.findall(r'pip install (?:-e )?"?\.\[(\w+)\]', text) == ["api"]
    run_lines = [line for line in text.splitlines() if line.startswith("RUN")]
    assert not any("torch" in line for line in run_lines)
    assert not re.search(r"^COPY worker/", text, re.MULTILINE)
    # Of models/, only the torch-free options classes the API validates train jobs with.
    copied = re.findall(r"^COPY (models/\S*)", text, re.MULTILINE)
    assert copied == ["models/__init__.py", "models/engine_options/"]


def test_dockerignore_admits_only_the_sources():
    lines = [
        line
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert lines[0] == "*"
    admitted = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert ".venv" not in admitted and ".git" not in admitted
    assert {"api", "core", "worker", "models", "migrations", "pyproject.toml"} <= admitted
