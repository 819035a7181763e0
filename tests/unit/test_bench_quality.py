"""bench/quality.py's time-boxed budget is one every engine accepts: it asks for the
largest ``max_steps`` the options declare and lets ``max_seconds`` end the run (it once
asked for 10**9 steps, which the bounds refuse, and the bench died before training)."""

from __future__ import annotations

import pytest

from bench.quality import most_steps
from models import engines
from models.engine_options import CONFIGS
from models.engines.base import EngineError
from models.engines.runtime import config as configs


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("image_size", [16, 28])
def test_time_boxed_budget_is_accepted_by_every_engine(name: str, image_size: int) -> None:
    values = {"max_steps": most_steps(name), "max_seconds": 150.0, "image_size": image_size}
    config = configs.make_config(engines.get(name).options, values, engine=name)
    assert config.max_steps == most_steps(name)
    with pytest.raises(EngineError, match="max_steps"):
        configs.make_config(
            engines.get(name).options, {**values, "max_steps": most_steps(name) + 1}, engine=name
        )
