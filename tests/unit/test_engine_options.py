"""Engine options are declared once (models/engine_options): submit and the engine take and
refuse exactly the same values, at every bound of every option; the documented "0: off"
values work; the README's table is the one the classes generate."""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from fastapi.testclient import TestClient
from synthgen_client import cli
from synthgen_client.sdk import Client

from core import catalog
from models import datasets, engine_options, engines
from models.engine_options import PrivacyOptions, readme
from models.engines import ddpm, ebm, gan
from models.engines.base import EngineError, Hooks
from models.engines.runtime import config as configs
from tests import embedded_api

ROOT = Path(__file__).resolve().parents[2]
RESOLVE = {"ddpm": ddpm.resolve_config, "gan": gan.resolve_config, "ebm": ebm.resolve_config}
DATASET = "digits"
SIZE = catalog.DEFAULT_IMAGE_SIZE[DATASET]  # what the worker trains a digits job at
# Inclusive bounds that are refused anyway, each for a reason of its own.
REFUSED_AT_BOUND = {
    ("image_size", 4): "no engine builds networks for 4 px",
    ("image_size", 512): "nor for 512 px",
    ("buffer_size", 1): "ebm's buffer must hold a batch (64 by default)",
}


def _outside(value: float, annotation: Any, direction: int) -> float:
    """The nearest value beyond ``value`` (a bound) in ``direction`` (-1 below, +1 above)."""
    if int in _types(annotation) and float not in _types(annotation):
        return int(value) + direction
    return math.nextafter(float(value), direction * math.inf)


def _types(annotation: Any) -> set[Any]:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _types(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return set().union(*(_types(a) for a in typing.get_args(annotation)))
    return {origin or annotation}


def _cases() -> Iterator[tuple[str, str, Any, bool | None]]:
    """(engine, option, value, expected: True accepted, False refused, None either)."""
    for engine, cls in engine_options.CONFIGS.items():
        for field in dataclasses.fields(cls):
            info = cls.__pydantic_fields__[field.name]  # type: ignore[attr-defined]
            bounds = engine_options.bounds(info.metadata)
            for key, direction, inclusive in (
                ("min", -1, True),
                ("max", +1, True),
                ("exclusive_min", -1, False),
                ("exclusive_max", +1, False),
            ):
                if key not in bounds:
                    continue
                at = bounds[key]
                if list in _types(info.annotation):
                    continue  # lists: by length below
                expected = inclusive and (field.name, at) not in REFUSED_AT_BOUND
                yield engine, field.name, at, expected
                yield engine, field.name, _outside(at, info.annotation, direction), False
            if "min_items" in bounds:
                default = cls().resolved(SIZE)
                item = getattr(default, field.name)[0]
                for n in (bounds["min_items"], bounds["max_items"]):
                    yield engine, field.name, [item] * n, None
                yield engine, field.name, [item] * (bounds["min_items"] - 1), False
                yield engine, field.name, [item] * (bounds["max_items"] + 1), False
            if typing.get_origin(info.annotation) is typing.Literal or "one of" in (
                engine_options.type_text(info.annotation)
            ):
                yield engine, field.name, "no-such-choice", False
            if bool in _types(info.annotation):
                yield engine, field.name, 1, False


CASES = list(_cases())

PRIVATE = {"ddpm": {}, "gan": {"variant": "vanilla"}, "ebm": None}
"""What each engine's config needs beside ``privacy`` to train privately (None: it cannot)."""


def _privacy_cases() -> Iterator[tuple[str, dict[str, Any], bool]]:
    """(engine, config, expected) at every bound of every field of ``privacy``."""
    base = {"epsilon": 1.0}
    for name, info in PrivacyOptions.__pydantic_fields__.items():  # type: ignore[attr-defined]
        for key, value in engine_options.bounds(info.metadata).items():
            direction = -1 if "min" in key else +1
            outside = math.nextafter(float(value), direction * math.inf)
            for at, inside in ((value, not key.startswith("exclusive")), (outside, False)):
                for engine, extra in PRIVATE.items():
                    config = {**(extra or {}), "privacy": {**base, name: at}}
                    yield engine, config, inside and extra is not None


PRIVACY_CASES = list(_privacy_cases())


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    home = tmp_path_factory.mktemp("api")
    settings = embedded_api.settings(home, max_queued_jobs=0, rate_limit_per_s=0)
    with embedded_api.client(settings, tenant="options") as client:
        yield client


def _submit(api: TestClient, engine: str, config: dict[str, Any]) -> tuple[bool, str]:
    body = {"kind": "train", "engine": engine, "dataset": DATASET, "model_name": "m"}
    response = api.post("/v1/jobs", json={**body, "config": config})
    if response.status_code == 201:
        return True, ""
    assert response.status_code == 422, response.text
    params = response.json()["invalid_params"]
    return False, " ".join(p["name"] + ": " + p["reason"] for p in params)


def _engine_accepts(engine: str, config: dict[str, Any]) -> tuple[bool, str]:
    # What engine.train does before its first step, with the image size the worker sets.
    try:
        options = configs.make_config(engine_options.CONFIGS[engine], config, engine=engine)
        RESOLVE[engine](options, SIZE)
    except EngineError as exc:
        return False, str(exc)
    return True, ""


@pytest.mark.parametrize(("engine", "option", "value", "expected"), CASES)
def test_submit_and_the_engine_agree_at_every_bound(api, engine, option, value, expected):
    config = {option: value}
    at_submit, why_submit = _submit(api, engine, config)
    in_engine, why_engine = _engine_accepts(engine, config)
    assert at_submit == in_engine, (why_submit, why_engine)
    if expected is not None:
        assert at_submit is expected, (why_submit, why_engine)
    if not at_submit:
        assert f"config.{option}" in why_submit or option in why_submit, why_submit


@pytest.mark.parametrize(("engine", "config", "expected"), PRIVACY_CASES)
def test_submit_and_the_engine_agree_at_every_privacy_bound(api, engine, config, expected):
    at_submit, why_submit = _submit(api, engine, config)
    in_engine, why_engine = _engine_accepts(engine, config)
    assert at_submit == in_engine == expected, (why_submit, why_engine)
    if not at_submit:
        assert "privacy" in why_submit and "privacy" in why_engine, (why_submit, why_engine)


@pytest.mark.parametrize(
    ("engine", "config", "reason"),
    [
        ("ddpm", {"max_seconds": 60}, "privacy: max_seconds cannot be set on a private run"),
        ("gan", {}, "privacy: variant 'dcgan' puts spectral norm in the discriminator"),
        ("gan", {"variant": "wgan-gp"}, "privacy: variant 'wgan-gp' adds a gradient penalty"),
        ("ebm", {}, "privacy: the ebm engine cannot train privately"),
    ],
)
def test_a_private_job_that_would_break_the_guarantee_is_a_422_naming_privacy(
    api, engine, config, reason
):
    ok, why = _submit(api, engine, {**config, "privacy": {"epsilon": 1}})
    assert not ok and why.startswith(f"config: {reason}"), why
    in_engine, why_engine = _engine_accepts(engine, {**config, "privacy": {"epsilon": 1}})
    assert not in_engine and reason in why_engine


def test_a_private_job_on_several_gpus_is_a_422_naming_gpus(api):
    body = {"kind": "train", "engine": "ddpm", "dataset": DATASET, "model_name": "m"}
    response = api.post("/v1/jobs", json={**body, "gpus": 2, "config": {"privacy": {"epsilon": 1}}})
    assert response.status_code == 422, response.text
    [param] = response.json()["invalid_params"]
    assert param["name"] == "gpus" and "private run" in param["reason"]


def test_every_option_has_bounds_or_choices_and_help():
    for cls in engine_options.CONFIGS.values():
        for field in dataclasses.fields(cls):
            assert cls.__pydantic_fields__[field.name].description, field.name  # type: ignore[attr-defined]
    assert {(e, o) for e, o, _, _ in CASES} | {(e, "privacy") for e, _, _ in PRIVACY_CASES} >= {
        (e, f.name)
        for e, cls in engine_options.CONFIGS.items()
        for f in dataclasses.fields(cls)
        if f.name != "channel_mult" or e == "ddpm"
    }
    for field in dataclasses.fields(PrivacyOptions):
        assert PrivacyOptions.__pydantic_fields__[field.name].description, field.name  # type: ignore[attr-defined]


def test_gan_batch_size_1_is_refused_at_submit_naming_the_field(api):
    ok, why = _submit(api, "gan", {"batch_size": 1})
    assert not ok and why.startswith("config.batch_size:"), why


def test_ddpm_grad_clip_and_checkpoint_every_0_are_accepted_as_documented(api):
    assert _submit(api, "ddpm", {"grad_clip": 0, "checkpoint_every": 0}) == (True, "")


@pytest.fixture(scope="module")
def tiny_shapes() -> datasets.ImageDataset:
    return datasets.load("shapes", image_size=8, count=64)


def test_ddpm_zero_means_off_in_the_engine(tiny_shapes: datasets.ImageDataset, monkeypatch):
    tiny = {"max_steps": 3, "batch_size": 8, "base_channels": 16, "warmup_steps": 0}
    checkpoints: list[int] = []
    hooks = Hooks(checkpoint=lambda step, directory: checkpoints.append(step))

    def clip(*args: Any, **kwargs: Any) -> torch.Tensor:
        raise AssertionError("clipped")

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", clip)
    engine = engines.get("ddpm")
    engine.train(tiny_shapes, {**tiny, "grad_clip": 0, "checkpoint_every": 0}, hooks)
    assert checkpoints == []
    with pytest.raises(AssertionError, match="clipped"):  # the patch is the one used
        engine.train(tiny_shapes, {**tiny, "grad_clip": 1.0, "checkpoint_every": 1}, hooks)


def test_get_engines_lists_every_option_with_its_default_bounds_and_help(api):
    listing = {e["name"]: e for e in api.get("/v1/engines").json()}
    assert sorted(listing) == engine_options.names()
    options = {o["name"]: o for o in listing["ddpm"]["options"]}
    assert options["grad_clip"]["min"] == 0 and options["grad_clip"]["default"] == 1.0
    assert options["batch_size"]["default_by_image_size"] == [[28, 32], [None, 128]]
    assert options["batch_size"]["default_text"] == "by image size: 32 up to 28 px, else 128"
    assert {o["name"]: o for o in listing["gan"]["options"]}["batch_size"]["min"] == 2
    assert listing["ebm"]["generate_options"] == ["noise", "step_size", "steps"]
    assert api.get("/v1/engines", headers={"Authorization": ""}).status_code == 401


def test_the_openapi_train_configs_are_the_engine_classes(api):
    schemas = api.get("/openapi.json").json()["components"]["schemas"]
    for cls in engine_options.CONFIGS.values():
        schema = schemas[cls.__name__]
        assert set(schema["properties"]) == {f.name for f in dataclasses.fields(cls)}
        assert schema["additionalProperties"] is False
    assert schemas["GANConfig"]["properties"]["batch_size"]["minimum"] == 2
    assert "/v1/engines" in api.get("/openapi.json").json()["paths"]


def test_the_readme_engine_table_is_the_generated_one():
    text = (ROOT / "README.md").read_text()
    assert readme.block() in text, "run: python -m models.engine_options --readme"


def test_synthgen_engines_prints_each_engine_s_options_and_json(api, monkeypatch, capsys):
    client = Client("http://testserver", "unused")
    client.http = api  # the app in-process, with this module's key
    monkeypatch.setattr(cli, "_client", lambda args: client)
    assert cli.main(["engines", "gan"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("gan: ") and lines[1] == "image sizes: 8, 16, 28, 32, 64"
    row = next(line.split() for line in lines if line.startswith("batch_size "))
    assert row[:6] == ["batch_size", "integer", "64", "2", "to", "4,096"]
    assert lines[lines.index("generate config:") + 1] == "  none"  # gan samples one way
    # ddpm's sampling options follow with their types, defaults and help, not just names.
    assert cli.main(["engines", "ddpm"]) == 0
    lines = capsys.readouterr().out.splitlines()
    generate = lines[lines.index("generate config:") + 1 :]
    assert generate[0].split()[:5] == ["OPTION", "TYPE", "DEFAULT", "RANGE", "WHAT"]
    sampled = {line.split()[0] for line in generate[1:] if line.strip() and line[0] != "-"}
    described = {o["name"] for o in engine_options.describe("ddpm")["sample_options"]}
    assert described and described <= sampled
    assert cli.main(["engines", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert [e["name"] for e in listing] == list(engine_options.CONFIGS)
    assert cli.main(["engines", "nope"]) == 2
    assert "the engines are ddpm, gan, ebm" in capsys.readouterr().err
