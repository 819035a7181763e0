"""The compose stack's fixture: a private Docker engine, the stand-in base images, both
images built, docker-compose.yml up with the CPU profile. One stack for tests/deploy; it is
taken down (volumes too) at the end, the engine stopped, its layer cache kept."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy import stack as compose
from tests.deploy import standins
from tests.deploy.engine import Engine


# Package scope: torn down after the last test of tests/deploy, not at the end of the
# whole session (an idle stack would hold memory and ports through every other test).
@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[compose.Stack]:
    engine = Engine()
    engine.start()
    if os.environ.get("SYNTHGEN_TEST_STACK_REUSE") == "1":
        # For working on these tests only (never in CI): take the stack a previous run left
        # up as it is (no build, no `up`), and leave it up at the end.
        running = compose.Stack(env_file=Path(os.environ["SYNTHGEN_TEST_STACK_ENV"]))
        running.key = running.create_key("me")
        yield running
        return
    started = time.monotonic()
    made = standins.ensure()
    standins_s = round(time.monotonic() - started, 1)
    built = compose.build_images()
    running = compose.Stack(env_file=compose.write_env(tmp_path_factory.mktemp("compose")))
    running.compose("down", "-v", "--remove-orphans", check=False)  # a killed run's leftovers
    try:
        up_s = running.up()
        running.timings = {"standins_s": standins_s, "up_s": up_s, "images": built}
        # The figures BENCHMARKS.md quotes: printed with -s, and in the log of any failure.
        print(json.dumps({"standins": made, "images": built, **running.timings}), file=sys.stderr)
        running.key = running.create_key("me")
        yield running
    finally:
        print(json.dumps({"timings": running.timings}), file=sys.stderr)
        running.compose("down", "-v", "--remove-orphans", check=False, timeout=300)
        engine.stop()
