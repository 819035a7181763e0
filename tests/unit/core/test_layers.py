"""The house rules of ARCHITECTURE.md: imports point down, and the API never loads torch.

The rules themselves are import-linter contracts in pyproject.toml ([tool.importlinter]);
these tests run them on the tree, and on a copy of the tree with violations planted, so a
contract that stopped matching anything would fail here rather than pass in silence.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ("api", "core", "models", "worker", "errors", "clients")
# The contracts, by their ids in pyproject.toml; each must stay kept and be able to break.
CONTRACTS = 9
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` on the tree at ``root``, its packages found there (not installed)."""
    path = f"{root}{os.pathsep}{root / 'clients' / 'python'}"
    # A wide terminal: one contract a line in the report, however long its name.
    env = {**os.environ, "PYTHONPATH": path, "COLUMNS": "1000"}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", str(root / "pyproject.toml")],
        capture_output=True,
        text=True,
        cwd=root,
        env=env,
        check=False,
    )


def _contracts(output: str, verdict: str) -> set[str]:
    """The names of the contracts the report marks ``verdict`` (KEPT or BROKEN)."""
    pattern = rf"^(.+?) {verdict}(?: \(\d+ ignored imports?\))?$"
    return {m.group(1) for m in re.finditer(pattern, output, re.M)}


def test_the_tree_keeps_every_import_contract():
    out = _lint_imports(ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"Contracts: {CONTRACTS} kept, 0 broken." in out.stdout


# Each plant breaks one contract; the lazy ones show that an import inside a function
# counts like any other (the way a layer was crossed, or a loop closed, without a test
# noticing). Every contract is broken by one plant, so none can go quietly blind.
PLANTS = {
    "api/_planted.py": ("def load():\n    import torch\n", "api never reaches torch"),
    "api/_planted_models.py": ("from models import engine_options\n", "api imports no models"),
    "errors/_planted.py": ("import torch\n", "errors imports no torch"),
    "models/_planted.py": ("from core import config\n", "api and worker over core"),
    "core/_planted.py": ("from models.engines import base\n", "core reads only"),
    "clients/python/synthgen_client/_planted.py": (
        "def admin():\n    from core import db\n",
        "the client imports none",
    ),
    "worker/_planted.py": ("import synthgen_client\n", "the server's packages never"),
    "core/_planted_a.py": ("from core import _planted_b\n", "no module imports another"),
    "core/_planted_b.py": ("def back():\n    from core import _planted_a\n", None),
}
# Appended to a handler: one handler reaching another.
HANDLER_PLANT = ("worker/txt2img.py", "\n\ndef _planted():\n    from worker import generate\n")


def test_a_planted_violation_breaks_its_contract(tmp_path):
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    # The cycle contract's type (pyproject: contract_types) and its package.
    for path in ("tests/__init__.py", "tests/import_contracts.py"):
        (tmp_path / path).parent.mkdir(exist_ok=True)
        shutil.copy(ROOT / path, tmp_path / path)

    for path, (code, _) in PLANTS.items():
        (tmp_path / path).write_text(code)
    handler, code = HANDLER_PLANT
    with (tmp_path / handler).open("a") as module:
        module.write(code)
    out = _lint_imports(tmp_path)

    assert out.returncode == 1, out.stdout + out.stderr
    broken = _contracts(out.stdout, "BROKEN")
    expected = [c for _, c in PLANTS.values() if c] + ["the job handlers never import"]
    for contract in expected:
        assert any(name.startswith(contract) for name in broken), (contract, broken)
    assert len(broken) == len(expected) == CONTRACTS, broken
    assert "- core._planted_a -> core._planted_b (l.1)" in out.stdout
    assert "- core._planted_b -> core._planted_a (l.2)" in out.stdout


def test_the_engine_options_load_without_torch():
    code = "import sys, models.engine_options; print('torch' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert out.stdout.strip() == "False"


def test_importing_the_api_does_not_load_torch():
    # The contracts see this repository's imports; this sees what a library loads at run time.
    code = "import sys, api.main; print('torch' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert out.stdout.strip() == "False"
