"""Sampling options are declared once per engine (models/engine_options): the request
schema, admission, the engine's own check and GET /v1/engines all read those classes."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from pydantic import ValidationError
from pydantic.dataclasses import dataclass

from core.errors import InvalidRequest
from core.jobs import admission, engine_configs
from core.jobs.schemas import parse_job
from models import engine_options
from models.engine_options import sampling
from models.engine_options.base import CONFIG, Int
from models.engines.base import EngineError
from models.engines.runtime.sampling import check_declared

BOUNDS = [
    (engine, option["name"], bound, option[bound])
    for engine in engine_options.SAMPLING
    for option in engine_options.describe(engine)["sample_options"]
    for bound in ("min", "max", "exclusive_min", "exclusive_max")
    if bound in option
]


def _outside(bound: str, value: float) -> float:
    step = 1 if bound in {"max", "exclusive_min"} else -1
    return value + step * (0 if bound.startswith("exclusive") else 1)


def _generate(config: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "generate", "model": "m", "count": 1, "config": config}


def test_the_request_schema_takes_every_engines_options_and_no_other():
    declared = {f for cls in engine_options.SAMPLING.values() for f in sampling.names(cls)}
    assert set(parse_job(_generate({})).config.options()) == set()
    assert {f.name for f in dataclasses.fields(parse_job(_generate({})).config)} == declared
    with pytest.raises(ValidationError, match=r"config\.bogus"):
        parse_job(_generate({"bogus": 1}))


@pytest.mark.parametrize(("engine", "field", "bound", "value"), BOUNDS)
def test_a_value_past_a_bound_is_refused_at_submit_and_by_the_engine_naming_it(
    engine, field, bound, value
):
    cls = engine_options.SAMPLING[engine]
    bad = {field: _outside(bound, value)}
    with pytest.raises(ValidationError, match=rf"config\.{field}\n"):
        parse_job(_generate(bad))
    with pytest.raises(EngineError, match=rf"^{field}[ :]"):
        check_declared(cls, bad)
    if not bound.startswith("exclusive"):
        parse_job(_generate({field: value}))
        check_declared(cls, {field: value})


def test_an_option_of_another_engine_is_refused_at_admission_naming_it():
    options = parse_job(_generate({"guidance_scale": 2.0})).config.options()
    admission.check_sample_options(options, "ddpm", "config")
    with pytest.raises(InvalidRequest, match="not a sampling option of engine 'gan'") as caught:
        admission.check_sample_options(options, "gan", "config")
    assert caught.value.field == "config.guidance_scale"


def test_eta_with_a_solver_is_one_rule_said_plainly_to_the_api_and_as_reprs_by_the_engine():
    bad = {"sampler": "unipc", "eta": 0.5}
    with pytest.raises(ValidationError, match="applies to sampler ddim only; unipc is"):
        parse_job(_generate(bad))
    with pytest.raises(EngineError, match="^eta applies to sampler 'ddim' only; 'unipc' is"):
        check_declared(engine_options.SAMPLING["ddpm"], bad)


def test_get_engines_lists_each_engines_sampling_options_from_its_class():
    for engine in engine_configs.engines():
        names = [o.name for o in engine.sample_options]
        assert names == list(sampling.names(engine_options.SAMPLING[engine.name]))
        assert engine.generate_options == sorted(names)
    ddpm = {o.name: o for o in engine_configs.engines()[0].sample_options}
    assert ddpm["sampler"].choices == ["ddim", "ddpm", "dpm_solver_multistep", "unipc"]
    assert ddpm["guidance_scale"].default_text == "the model's sample_guidance_scale"


def test_engines_that_disagree_on_a_shared_options_bounds_cannot_share_a_request_schema():
    @dataclass(config=CONFIG)
    class Wide(sampling.SampleOptions):
        steps: Int | None = sampling.sample_option(ge=1, le=10**6, left_out="1", help="more")

    with pytest.raises(TypeError, match="sampling option 'steps' of wide differs"):
        sampling.any_engine({**engine_options.SAMPLING, "wide": Wide}, "Any", doc="")
