"""Specification of the shared training utilities (models/engines/runtime/)."""

from __future__ import annotations

import json
import random
import time
from typing import Literal

import numpy as np
import pytest
import torch
from pydantic.dataclasses import dataclass as pydantic_dataclass

from models.engine_options.base import CONFIG, Float, Int, TrainOptions, option
from models.engines.base import EngineError, Trained, TrainingDiverged
from models.engines.runtime import (
    checkpoints,
    devices,
    model_files,
    numerics,
    pixels,
    rng,
    sampling,
)
from models.engines.runtime import config as configs
from models.engines.runtime.budget import Budget
from models.engines.runtime.data_order import DataOrder
from models.engines.runtime.ema import EMA


def test_pick_device_is_cpu_when_cuda_is_absent():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert devices.pick_device().type == expected
    assert devices.pick_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_pick_device_refuses_cuda_without_it():
    with pytest.raises(EngineError, match="CUDA is not available"):
        devices.pick_device("cuda")


def test_seed_everything_repeats_every_rng_and_returns_a_seeded_generator():
    first = rng.seed_everything(3)
    drawn = (random.random(), np.random.rand(), torch.rand(1), torch.rand(1, generator=first))
    second = rng.seed_everything(3)
    again = (random.random(), np.random.rand(), torch.rand(1), torch.rand(1, generator=second))
    assert drawn == again


def test_rng_state_round_trip_restores_python_numpy_and_torch():
    rng.seed_everything(5)
    state = rng.rng_state()
    expected = (random.random(), np.random.rand(), np.random.randn(), torch.rand(2).tolist())
    random.seed(99)
    np.random.seed(99)
    torch.manual_seed(99)
    rng.set_rng_state(state)
    assert (
        random.random(),
        np.random.rand(),
        np.random.randn(),
        torch.rand(2).tolist(),
    ) == expected


def test_rng_state_survives_a_checkpoint(tmp_path):
    rng.seed_everything(6)
    checkpoints.save_state(tmp_path, {"rng": rng.rng_state()})
    expected = (random.random(), np.random.rand(), torch.rand(2).tolist())
    rng.set_rng_state(checkpoints.load_state(tmp_path)["rng"])
    assert (random.random(), np.random.rand(), torch.rand(2).tolist()) == expected


def test_data_order_visits_every_index_once_per_epoch():
    order = DataOrder(10, 5, seed=0)
    epoch = torch.cat([order.next_indices(), order.next_indices()])
    assert sorted(epoch.tolist()) == list(range(10))
    assert order.state_dict() == {"epoch": 1, "position": 0, "seed": 0}


def test_data_order_reshuffles_each_epoch_and_depends_on_seed():
    order = DataOrder(50, 50, seed=0)
    assert not torch.equal(order.next_indices(), order.next_indices())
    assert not torch.equal(
        DataOrder(50, 50, seed=0).next_indices(),
        DataOrder(50, 50, seed=1).next_indices(),
    )


def test_data_order_batch_larger_than_dataset_spans_epochs():
    batch = DataOrder(3, 7, seed=0).next_indices()
    assert batch.shape == (7,)
    assert sorted(batch[:3].tolist()) == [0, 1, 2]


def test_data_order_resumed_equals_uninterrupted():
    uninterrupted = DataOrder(7, 3, seed=4)
    expected = [uninterrupted.next_indices() for _ in range(6)]
    first = DataOrder(7, 3, seed=4)
    got = [first.next_indices() for _ in range(2)]
    resumed = DataOrder(7, 3, seed=0)
    resumed.load_state_dict(first.state_dict())
    got += [resumed.next_indices() for _ in range(4)]
    assert all(torch.equal(a, b) for a, b in zip(expected, got, strict=True))


def test_budget_ends_at_max_steps():
    budget = Budget(max_steps=3)
    assert budget.total == 3
    assert not budget.exhausted(2)
    assert budget.exhausted(3)


def test_budget_ends_when_the_time_is_up():
    budget = Budget(max_steps=1000, max_seconds=0.01)
    time.sleep(0.02)
    assert budget.exhausted(1)


def test_budget_carries_seconds_spent_through_its_state():
    budget = Budget(max_steps=10, max_seconds=100.0)
    budget.load_state_dict({"elapsed": 99.99})
    assert budget.elapsed >= 99.99
    time.sleep(0.02)
    assert budget.exhausted(1)


def test_budget_rejects_nonpositive_limits():
    with pytest.raises(EngineError, match="max_steps"):
        Budget(max_steps=0)
    with pytest.raises(EngineError, match="max_seconds"):
        Budget(max_steps=1, max_seconds=0)


def test_ema_moves_towards_the_model_with_warmed_up_decay():
    model = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.zeros_(model.weight)
    ema = EMA(model, decay=0.999)
    torch.nn.init.ones_(model.weight)
    ema.update(model)
    # First update: decay = min(0.999, 2/11), so the average moves 9/11 of the way.
    assert ema.averaged.weight.item() == pytest.approx(9 / 11)
    assert not ema.averaged.weight.requires_grad


def test_ema_warmed_up_from_2_is_the_mean_of_every_weight_until_the_decay_takes_over():
    model = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.zeros_(model.weight)
    ema = EMA(model, decay=0.9, warmup=2)
    seen = [0.0, 0.0]  # the initial weight weighs as two updates: (1 + k) / (2 + k)
    for value in (3.0, 6.0, 9.0, 12.0):
        torch.nn.init.constant_(model.weight, value)
        ema.update(model)
        seen.append(value)
        assert ema.averaged.weight.item() == pytest.approx(sum(seen) / len(seen))
    # After 8 updates (1 + k) / (2 + k) = 0.9: from then on the decay caps it.
    for _ in range(20):
        ema.update(model)
    before = ema.averaged.weight.item()
    torch.nn.init.constant_(model.weight, 0.0)
    ema.update(model)
    assert ema.averaged.weight.item() == pytest.approx(0.9 * before)


def test_ema_copy_to_and_state_round_trip():
    model = torch.nn.Linear(2, 2)
    ema = EMA(model, decay=0.5)
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update(model)
    restored = EMA(torch.nn.Linear(2, 2), decay=0.5)
    restored.load_state_dict(ema.state_dict())
    assert restored.num_updates == 1
    target = torch.nn.Linear(2, 2)
    restored.copy_to(target)
    assert torch.equal(target.weight, ema.averaged.weight)


def test_check_finite_passes_numbers_and_raises_with_the_hint():
    numerics.check_finite("loss", torch.tensor(1.5), "lower lr")
    with pytest.raises(TrainingDiverged, match=r"loss became nan at step 7; lower lr \(now 1\)"):
        numerics.check_finite("loss", float("nan"), "lower lr (now 1)", step=7)
    with pytest.raises(TrainingDiverged, match="inf"):
        numerics.check_finite("loss", torch.tensor(float("inf")), "lower lr")


def test_autocast_and_channels_last_are_noops_on_cpu():
    cpu = torch.device("cpu")
    x = torch.randn(2, 3, 4, 4)
    assert devices.channels_last(x, cpu) is x
    with devices.autocast(cpu):
        assert (x @ x.transpose(-1, -2)).dtype == torch.float32


def test_pixels_map_to_unit_range_and_back():
    images = torch.arange(256, dtype=torch.uint8).reshape(1, 1, 16, 16)
    x = pixels.to_unit_range(images)
    assert x.min() == -1.0 and x.max() == 1.0
    assert torch.equal(pixels.to_uint8(x), images)
    assert pixels.to_uint8(torch.tensor([-3.0, 3.0])).tolist() == [0, 255]


def _stepped_adamw() -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1, betas=(0.8, 0.9))
    model(torch.randn(4, 3)).square().sum().backward()
    optimizer.step()
    return model, optimizer


def test_optimizer_state_round_trips_through_safetensors_and_json(tmp_path):
    model, optimizer = _stepped_adamw()
    checkpoints.save_state(tmp_path, {"optimizer": optimizer.state_dict(), "step": 1})
    restored = checkpoints.load_state(tmp_path)
    assert restored["step"] == 1
    fresh = torch.optim.AdamW(model.parameters(), lr=0.1)
    fresh.load_state_dict(restored["optimizer"])
    assert fresh.param_groups[0]["betas"] == (0.8, 0.9)
    assert set(fresh.state_dict()["state"]) == {0, 1}
    for key in ("exp_avg", "exp_avg_sq", "step"):
        assert torch.equal(fresh.state[model.weight][key], optimizer.state[model.weight][key])


def test_checkpoint_is_safetensors_plus_json_only(tmp_path):
    _, optimizer = _stepped_adamw()
    written = checkpoints.save_state(tmp_path, {"optimizer": optimizer.state_dict()})
    assert sorted(p.name for p in written) == ["checkpoint.json", "checkpoint.safetensors"]
    meta = json.loads((tmp_path / "checkpoint.json").read_text())
    assert meta["optimizer"]["state"]["__items__"][0][0] == 0  # int keys survive JSON


def test_flatten_state_copies_tensors_that_share_storage(tmp_path):
    weight = torch.randn(3)
    checkpoints.save_state(tmp_path, {"a": weight, "b": weight, "c": weight[:2]})
    loaded = checkpoints.load_state(tmp_path)
    assert torch.equal(loaded["a"], loaded["b"]) and torch.equal(loaded["c"], weight[:2])


def test_flatten_state_refuses_objects_it_cannot_describe():
    with pytest.raises(TypeError, match="set"):
        checkpoints.flatten_state({"bad": {1, 2}})


def test_load_checkpoint_of_an_empty_directory_says_what_is_missing(tmp_path):
    with pytest.raises(EngineError, match="checkpoint.safetensors"):
        checkpoints.load_checkpoint(tmp_path)


@pydantic_dataclass(config=CONFIG)
class _Config(TrainOptions):
    steps: Int = option(1, ge=1, help="steps")
    lr: Float = option(0.1, gt=0, help="rate")
    name: str | None = option(None, help="name")
    sizes: list[Int] = option(factory=list, help="sizes")
    mode: Literal["a", "b"] = option("a", help="mode")


def test_make_config_fills_defaults_and_accepts_json_types():
    config = configs.make_config(
        _Config, {"lr": 1, "sizes": [1, 2.0], "mode": "b", "max_steps": 7.0}, engine="x"
    )
    assert config == _Config(steps=1, lr=1, name=None, sizes=[1, 2], mode="b", max_steps=7)
    assert isinstance(config.max_steps, int) and isinstance(config.sizes[1], int)


def test_make_config_names_an_unknown_key():
    with pytest.raises(EngineError, match=r"unknown x config key 'stepz'.*'steps'"):
        configs.make_config(_Config, {"stepz": 3}, engine="x")


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("steps", 1.5, "a valid integer"),
        ("steps", True, "a valid integer"),
        ("steps", 0, "greater than or equal to 1"),
        ("lr", "0.1", "a valid number"),
        ("name", 3, "a valid string"),
        ("sizes", ["1"], "a valid integer"),
        ("mode", "c", "'a' or 'b'"),
    ],
)
def test_make_config_refuses_a_value_of_the_wrong_type_or_out_of_bounds(key, value, expected):
    with pytest.raises(EngineError, match=f"x config '{key}.*': Input should be {expected}"):
        configs.make_config(_Config, {key: value}, engine="x")


def _trained(engine: str = "toy") -> Trained:
    return Trained(
        engine=engine,
        config={"width": 2},
        num_classes=2,
        image_shape=(1, 4, 4),
        class_names=["a", "b"],
        modules={"net": torch.nn.Linear(2, 2)},
        metrics={"loss": 0.5},
    )


def test_saved_model_describes_itself_and_reads_back(tmp_path):
    trained = _trained()
    model_files.save_trained(trained, tmp_path)
    description, states = model_files.read_trained(tmp_path, "toy")
    assert description["engine"] == "toy" and description["format_version"] == 1
    assert description["image_shape"] == [1, 4, 4] and description["class_names"] == ["a", "b"]
    assert torch.equal(states["net"]["weight"], trained.modules["net"].weight)


def test_read_trained_refuses_another_engines_files(tmp_path):
    model_files.save_trained(_trained("gan"), tmp_path)
    with pytest.raises(EngineError, match="holds a 'gan' model"):
        model_files.read_trained(tmp_path, "toy")


def test_read_trained_refuses_a_newer_format(tmp_path):
    model_files.save_trained(_trained(), tmp_path)
    config = tmp_path / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "format_version": 99}))
    with pytest.raises(EngineError, match="upgrade synthgen"):
        model_files.read_trained(tmp_path, "toy")


def test_iter_batches_covers_the_range():
    assert list(sampling.iter_batches(5, 2)) == [slice(0, 2), slice(2, 4), slice(4, 5)]
