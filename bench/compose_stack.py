"""The compose stack's cost: stand-in base images, both image builds (wall time, size),
`up --wait`, `down` + `up`, and the whole tests/deploy stack run, cold (an empty engine
data root: nothing cached) or warm (the data root `make test` keeps between runs).

    .venv/bin/python bench/compose_stack.py warm   # -> bench/results/compose-stack-warm.json
    .venv/bin/python bench/compose_stack.py cold   # a fresh data root, deleted afterwards

It runs the test itself (tests/deploy/test_stack*.py): the figures are those of the run
that proves the stack works, read from the JSON lines its fixture prints.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(mode: str) -> None:
    env = {**os.environ}
    cold_root = None
    if mode == "cold":
        cold_root = Path(tempfile.mkdtemp(prefix="synthgen-docker-cold-", dir="/var/cache"))
        env["SYNTHGEN_TEST_DOCKER_ROOT"] = str(cold_root)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider",
         "tests/deploy/test_stack.py", "tests/deploy/test_stack_faults.py"],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    wall = round(time.monotonic() - started, 1)
    lines = [json.loads(x) for x in done.stderr.splitlines() if x.startswith("{")]
    result = {
        "mode": mode,
        "passed": done.returncode == 0,
        "wall_s": wall,
        "fixture": lines,
        "durations": [x for x in done.stdout.splitlines() if "passed" in x or "failed" in x][-1:],
    }
    out = ROOT / "bench" / "results" / f"compose-stack-{mode}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    if cold_root is not None:
        subprocess.run(["umount", "-R", str(cold_root)], capture_output=True, check=False)
        shutil.rmtree(cold_root, ignore_errors=True)
    if done.returncode != 0:
        print(done.stdout[-5000:], done.stderr[-5000:], sep="\n")
        sys.exit(1)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "warm")
