"""The handler table covers every job kind, and handlers never import one another."""

from __future__ import annotations

import inspect
import subprocess
import sys
import tomllib
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


def test_the_import_contract_keeps_every_handler_apart():
    # That no handler imports another (even lazily, even through a module in between) is
    # the import-linter contract "handlers-apart", run by tests/unit/core/test_layers.py;
    # here, that it names exactly the modules of the table.
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = [c for c in config["contracts"] if c["id"] == "handlers-apart"]
    assert set(contract["modules"]) == set(HANDLER_MODULES.values())


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
