"""The handler table covers every job kind, and handlers never import one another."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

from core.jobs.states import JobKind
from worker.handlers import HANDLERS

ROOT = Path(__file__).resolve().parents[3]
HANDLER_MODULES = {kind: handler.__module__ for kind, handler in HANDLERS.items()}


def test_every_job_kind_has_a_handler():
    assert set(HANDLERS) == set(JobKind)


@pytest.mark.parametrize("kind", list(JobKind))
def test_each_handler_is_the_run_of_a_module_of_its_own(kind):
    assert HANDLERS[kind].__name__ == "run"
    assert inspect.signature(HANDLERS[kind]).parameters.keys() == {"ctx"}
    assert list(HANDLER_MODULES.values()).count(HANDLER_MODULES[kind]) == 1


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


@pytest.mark.parametrize("kind", list(JobKind))
def test_a_handler_imports_no_other_handler(kind):
    own = HANDLER_MODULES[kind]
    path = ROOT / (own.replace(".", "/") + ".py")
    others = set(HANDLER_MODULES.values()) - {own}
    assert _imports(path) & others == set()


def test_importing_the_runner_loads_no_handler_and_no_torch():
    code = (
        "import sys, worker.tasks; "
        f"print(sorted(m for m in {sorted(HANDLER_MODULES.values())!r} if m in sys.modules), "
        "'torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.split() == ["[]", "False"]
