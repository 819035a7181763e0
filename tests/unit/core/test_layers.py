"""The house rules of ARCHITECTURE.md: imports point down, and the API never loads torch."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
CLIENT = "clients/python/synthgen_client"
FORBIDDEN = {
    # The one base of a user's mistake, below every layer: it imports none of them.
    "errors": {"api", "core", "models", "worker", "synthgen_client", "torch"},
    "models": {"core", "api", "worker", "synthgen_client"},
    "core": {"api", "worker", "synthgen_client", "models", "torch"},
    "api": {"worker", "models", "torch", "synthgen_client"},
    "worker": {"api", "synthgen_client"},
    # The SDK and CLI reach the server only over HTTP; the commands that run the server
    # (up, demo, keys, db) import it inside the function, so a client-only install works.
    CLIENT: {"api", "worker", "models", "torch"},
}
# The engines' options classes are torch-free and shared downward-safe: core validates job
# bodies with the very classes the engines run with (docs/architecture.md).
ALLOWED = {"core": {"models.engine_options"}}


def _modules(path: Path) -> set[str]:
    """Every module ``path`` imports, in full (``from a import b`` counts as ``a.b``)."""
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return names


def _imports(path: Path, package: str) -> set[str]:
    """The top-level packages ``path`` imports, leaving out the modules ``package`` may use."""
    allowed = ALLOWED.get(package, set())
    return {
        name.split(".")[0]
        for name in _modules(path)
        if not any(name == a or name.startswith(a + ".") for a in allowed)
    }


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_downward(package):
    offenders = {
        str(path.relative_to(ROOT)): sorted(_imports(path, package) & FORBIDDEN[package])
        for path in (ROOT / package).rglob("*.py")
        if _imports(path, package) & FORBIDDEN[package]
    }
    assert offenders == {}


def test_the_engine_options_load_without_torch():
    code = "import sys, models.engine_options; print('torch' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert out.stdout.strip() == "False"


def test_importing_the_api_does_not_load_torch():
    code = "import sys, api.main; print('torch' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert out.stdout.strip() == "False"
