"""The Engine contract (models/engines/base.py), run against every registered engine and
a fixture engine registered as a real one is (tests/unit/models/mean_engine.py).

Engine-specific behaviour (losses, samplers, options, defaults) is tested in each
engine's own file; what every engine must do alike is here, once.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from models import datasets, engines
from models.engines.base import Engine, EngineError, Hooks, Stopped, Trained
from models.engines.runtime import budget

# name: (a tiny config, sample options that keep sampling quick)
TINY: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "ddpm": (
        {"batch_size": 8, "base_channels": 16, "layers_per_block": 1, "warmup_steps": 0},
        {"steps": 2},
    ),
    "gan": ({"batch_size": 8, "width": 4, "z_dim": 8}, {}),
    "ebm": (
        {"batch_size": 8, "width": 4, "buffer_size": 16, "langevin_steps": 3, "sample_steps": 3},
        {},
    ),
    "mean": ({"batch_size": 4}, {}),
}
FIXTURE = ("mean", "tests.unit.models.mean_engine:ENGINE")
NAMES = [*engines.names(), FIXTURE[0]]


@pytest.fixture(scope="module", autouse=True)
def _fixture_engine() -> Iterator[None]:
    engines.register(*FIXTURE)
    yield
    engines.unregister(FIXTURE[0])


@pytest.fixture(params=NAMES)
def name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def engine(name: str) -> Engine:
    return engines.get(name)


def config(name: str, **values: Any) -> dict[str, Any]:
    return {**TINY[name][0], "seed": 0, "max_steps": 3, **values}


def sample(engine: Engine, trained: Trained, n: int, **opts: Any) -> torch.Tensor:
    return engine.sample(trained, n, **{**TINY[engine.name][1], **opts})


_trained: dict[str, Trained] = {}


@pytest.fixture
def trained(name: str, engine: Engine, tiny_shapes: datasets.ImageDataset) -> Trained:
    if name not in _trained:
        _trained[name] = engine.train(tiny_shapes, config(name))
    return _trained[name]


def test_every_engine_in_the_tests_is_registered_and_satisfies_the_protocol(name, engine):
    assert set(TINY) >= set(engines.names()), "give every engine a tiny config above"
    assert name in engines.names()
    assert isinstance(engine, Engine) and engine.name == name


def test_train_reports_progress_every_step_and_stops_at_max_steps(engine, tiny_shapes):
    seen: list[tuple[int, int]] = []
    hooks = Hooks(progress=lambda step, total, **terms: seen.append((step, total)))
    trained = engine.train(tiny_shapes, config(engine.name, max_steps=2), hooks)
    assert seen == [(1, 2), (2, 2)]
    assert trained.metrics["steps"] == 2.0


def test_train_stops_when_max_seconds_are_spent(engine, tiny_shapes, monkeypatch):
    # A clock that moves one second each time it is read: the run ends after a few steps.
    ticks = iter(range(10**6))
    monkeypatch.setattr(budget, "time", SimpleNamespace(monotonic=lambda: float(next(ticks))))
    trained = engine.train(tiny_shapes, config(engine.name, max_steps=50, max_seconds=3.0))
    assert 1 <= trained.metrics["steps"] < 50


def test_should_stop_raises_stopped_at_the_next_step(engine, tiny_shapes):
    polls = iter([False, False, True])
    steps: list[int] = []
    hooks = Hooks(should_stop=lambda: next(polls), progress=lambda s, t, **m: steps.append(s))
    with pytest.raises(Stopped, match="step 2"):
        engine.train(tiny_shapes, config(engine.name, max_steps=5), hooks)
    assert steps == [1, 2]


def test_resumed_training_ends_bitwise_identical_to_an_uninterrupted_run(
    engine, tiny_shapes, tmp_path
):
    kept: dict[str, dict[int, Path]] = {"straight": {}, "resumed": {}}

    def keeper(run: str) -> Any:
        def keep(step: int, directory: Path) -> None:
            kept[run][step] = Path(shutil.copytree(directory, tmp_path / f"{run}-{step}"))

        return keep

    values = config(engine.name, max_steps=4, checkpoint_every=2)
    straight = engine.train(tiny_shapes, values, Hooks(checkpoint=keeper("straight")))
    hooks = Hooks(checkpoint=keeper("resumed"), resume_from=kept["straight"][2])
    resumed = engine.train(tiny_shapes, values, hooks)
    assert sorted(kept["resumed"]) == [4]
    for module, net in straight.modules.items():
        other = resumed.modules[module].state_dict()
        for key, value in net.state_dict().items():
            assert torch.equal(other[key], value), (module, key)
    # Raw weights, optimiser moments, RNGs and buffers agree too (not the seconds spent).
    first = load_file(kept["straight"][4] / "checkpoint.safetensors")
    second = load_file(kept["resumed"][4] / "checkpoint.safetensors")
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first if not k.startswith("budget"))


def test_a_resume_keeps_the_checkpoints_value_of_an_option_whose_default_changed_since(
    engine, tiny_shapes, tmp_path
):
    # A job checkpointed before an upgrade changed a default it did not name (ebm's lr at
    # 28 px did) must resume as it was built, not be refused or trained on the new value.
    kept: list[Path] = []
    hooks = Hooks(checkpoint=lambda step, d: kept.append(Path(shutil.copytree(d, tmp_path / "c"))))
    key = "lr_g" if engine.name == "gan" else "lr"  # every engine has a learning rate
    values = config(engine.name, max_steps=2, checkpoint_every=1)
    assert key not in values
    engine.train(tiny_shapes, {**values, "max_steps": 1}, hooks)
    path = kept[0] / "checkpoint.json"
    state = json.loads(path.read_text())
    older = state["config"][key] / 2  # "the default of the version that wrote it"
    state["config"][key] = older
    state["config"]["max_steps"] = 3  # the run's length too, when the request left it out
    path.write_text(json.dumps(state))
    left_out = {k: v for k, v in values.items() if k != "max_steps"}
    resumed = engine.train(tiny_shapes, left_out, Hooks(resume_from=kept[0]))
    assert resumed.config[key] == older and resumed.metrics["steps"] == 3
    # A length the request names wins, as a resume may change it.
    resumed = engine.train(tiny_shapes, values, Hooks(resume_from=kept[0]))
    assert resumed.metrics["steps"] == 2
    # A value the request names is still checked against the checkpoint.
    with pytest.raises(EngineError, match=rf"cannot resume: config \['{key}'\]"):
        engine.train(tiny_shapes, {**values, key: older * 4}, Hooks(resume_from=kept[0]))


def test_resuming_another_engines_checkpoint_is_refused(engine, tiny_shapes, tmp_path):
    other = next(n for n in NAMES if n != engine.name)
    kept: list[Path] = []
    hooks = Hooks(checkpoint=lambda step, d: kept.append(Path(shutil.copytree(d, tmp_path / "c"))))
    engines.get(other).train(tiny_shapes, config(other, max_steps=1, checkpoint_every=1), hooks)
    with pytest.raises(EngineError, match=f"written by '{other}', not {engine.name}"):
        engine.train(tiny_shapes, config(engine.name), Hooks(resume_from=kept[0]))


def test_save_then_load_gives_identical_samples(engine, trained, tmp_path):
    files = engine.save(trained, tmp_path)
    assert sorted(p.name for p in files) == ["config.json", "model.safetensors"]
    loaded = engine.load(tmp_path)
    assert loaded.config == trained.config and loaded.image_shape == trained.image_shape
    assert torch.equal(sample(engine, loaded, 4, seed=3), sample(engine, trained, 4, seed=3))


def test_same_seed_gives_identical_images_and_another_seed_does_not(engine, trained):
    first = sample(engine, trained, 4, seed=1)
    assert torch.equal(first, sample(engine, trained, 4, seed=1))
    assert not torch.equal(first, sample(engine, trained, 4, seed=2))


def test_samples_have_the_requested_number_shape_and_dtype(engine, trained):
    images = sample(engine, trained, 6, labels=torch.tensor([0, 1, 2, 3, 4, 0]), seed=0)
    assert images.shape == (6, 3, 8, 8) and images.dtype == torch.uint8
    assert images.device.type == "cpu"


@pytest.mark.parametrize(
    ("n", "labels", "message"),
    [
        (0, None, "n must be a positive integer"),
        (2, torch.tensor([0, 5]), r"labels must lie in \[0, 5\)"),
        (2, torch.tensor([-1, 0]), r"labels must lie in \[0, 5\)"),
        (3, torch.tensor([0, 1]), "labels must be 3 integers"),
        (2, torch.tensor([0.0, 1.0]), "labels must be 2 integers"),
    ],
)
def test_bad_n_or_labels_are_refused(engine, trained, n, labels, message):
    with pytest.raises(EngineError, match=message):
        sample(engine, trained, n, labels=labels)


@pytest.mark.parametrize(
    ("opts", "message"),
    [
        ({"bogus": 1}, "sample option 'bogus'; valid options are"),
        ({"batch_size": 0}, "batch_size must be a positive integer, got 0"),
    ],
)
def test_bad_sample_options_raise_an_engine_error_naming_the_option(engine, trained, opts, message):
    with pytest.raises(EngineError, match=message):
        sample(engine, trained, 2, **opts)


def test_sampling_reports_progress_to_the_total_and_stops_when_asked(engine, trained):
    seen: list[tuple[int, int]] = []
    sample(
        engine, trained, 3, batch_size=2, progress=lambda done, total: seen.append((done, total))
    )
    assert (
        seen
        and seen[-1][0] == seen[-1][1]
        and [d for d, _ in seen] == list(range(1, len(seen) + 1))
    )
    with pytest.raises(Stopped):
        sample(engine, trained, 3, should_stop=lambda: True)
