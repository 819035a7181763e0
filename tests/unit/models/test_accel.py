"""The GPU path's decisions, on CPU: torch.compile and its fallback to eager, where a
training set lives, and the sampling batch the free memory allows.

torch.compile itself is replaced by stand-ins here (compiling for real takes minutes on
CPU); bench/gpu.py runs the real thing on a GPU.
"""

from __future__ import annotations

import logging
import math
import weakref

import pytest
import torch

from models import datasets, engines
from models.engines import accel
from models.engines.base import EngineError

TINY = {
    "max_steps": 3,
    "batch_size": 8,
    "base_channels": 16,
    "layers_per_block": 1,
    "warmup_steps": 0,
    "lr": 1e-3,
    "seed": 0,
    "checkpoint_every": 0,
}
engine = engines.get("ddpm")


@pytest.fixture(autouse=True)
def fresh_compile_state(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts as a new process: no failure recorded, no wrapper cached."""
    monkeypatch.setattr(accel, "_failures", [])
    monkeypatch.setattr(accel, "_wrappers", weakref.WeakKeyDictionary())
    monkeypatch.delenv(accel.COMPILE_ENV, raising=False)


@pytest.fixture(scope="module")
def eager_weights(tiny_shapes: datasets.ImageDataset) -> dict[str, torch.Tensor]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(accel.COMPILE_ENV, "off")
        return engine.train(tiny_shapes, TINY).modules["unet"].state_dict()


def _assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def _compile_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == accel.__name__ and "torch.compile" in r.message]


# --------------------------------------------------------------------------- compile


@pytest.mark.parametrize(
    ("setting", "device", "expected"),
    [
        (None, "cpu", False),  # auto: CPU stays eager
        ("auto", "cuda", True),
        ("on", "cpu", True),
        ("OFF", "cuda", False),
    ],
)
def test_compile_setting_decides_per_device(monkeypatch, setting, device, expected):
    if setting is not None:
        monkeypatch.setenv(accel.COMPILE_ENV, setting)
    assert accel.compile_enabled(torch.device(device)) is expected


@pytest.mark.parametrize(
    ("work", "expected"),
    [(None, False), (accel.CPU_COMPILE_MIN_WORK - 1, False), (accel.CPU_COMPILE_MIN_WORK, True)],
)
def test_on_cpu_auto_compiles_only_a_sampling_run_long_enough_to_repay_it(work, expected):
    # None is training's call: CPU training stays eager.
    assert accel.compile_enabled(torch.device("cpu"), work) is expected


def test_compile_off_keeps_even_a_long_cpu_sampling_run_eager(monkeypatch):
    monkeypatch.setenv(accel.COMPILE_ENV, "off")
    assert accel.compile_enabled(torch.device("cpu"), 10 * accel.CPU_COMPILE_MIN_WORK) is False


def test_a_bad_compile_setting_names_the_variable_and_the_choices(monkeypatch):
    monkeypatch.setenv(accel.COMPILE_ENV, "yes")
    with pytest.raises(EngineError, match=r"SYNTHGEN_COMPILE must be one of .*'auto'.*'yes'"):
        accel.compile_enabled(torch.device("cpu"))


def test_on_cpu_by_default_the_module_itself_runs():
    module = torch.nn.Linear(2, 2)
    assert accel.compiled(module, torch.device("cpu")) is module


def test_a_working_compile_is_used_and_trains_the_same_weights(
    monkeypatch, tiny_shapes, eager_weights
):
    calls: list[int] = []

    def fake_compile(module, **options):
        assert options == {"dynamic": False}
        return lambda *args, **kwargs: calls.append(1) or module(*args, **kwargs)

    monkeypatch.setenv(accel.COMPILE_ENV, "on")
    monkeypatch.setattr(torch, "compile", fake_compile)
    trained = engine.train(tiny_shapes, TINY)
    assert len(calls) == TINY["max_steps"] + 1  # + the first step's trial backward
    _assert_same_weights(trained.modules["unet"].state_dict(), eager_weights)
    assert accel.compile_failures() == []


def test_the_trial_backward_of_the_first_call_leaves_no_gradient_behind(monkeypatch):
    monkeypatch.setenv(accel.COMPILE_ENV, "on")
    monkeypatch.setattr(torch, "compile", lambda module, **options: module)
    module = torch.nn.Linear(2, 1)
    out = accel.compiled(module, torch.device("cpu"))(torch.ones(3, 2))
    assert module.weight.grad is None
    out.sum().backward()  # the caller's own backward, as after any forward
    assert torch.equal(module.weight.grad, torch.full((1, 2), 3.0))


def _raise_at_compile(module, **options):
    raise RuntimeError("inductor: no C compiler")


def _raise_at_call(module, **options):
    def call(*args, **kwargs):
        raise RuntimeError("triton: ptxas failed")

    return call


class _FailingBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        raise RuntimeError("inductor: backward lowering failed")


def _raise_at_backward(module, **options):
    def call(*args, **kwargs):
        out = module(*args, **kwargs)
        return (_FailingBackward.apply(out[0]),)

    return call


@pytest.mark.parametrize("broken", [_raise_at_compile, _raise_at_call, _raise_at_backward])
def test_a_failing_compile_falls_back_to_eager_and_warns_once(
    monkeypatch, caplog, tiny_shapes, eager_weights, broken
):
    monkeypatch.setenv(accel.COMPILE_ENV, "on")
    monkeypatch.setattr(torch, "compile", broken)
    with caplog.at_level(logging.WARNING, logger=accel.__name__):
        first = engine.train(tiny_shapes, TINY)
        second = engine.train(tiny_shapes, TINY)  # the process does not try again
    _assert_same_weights(first.modules["unet"].state_dict(), eager_weights)
    _assert_same_weights(second.modules["unet"].state_dict(), eager_weights)
    warnings = _compile_warnings(caplog)
    assert len(warnings) == 1 and "SYNTHGEN_COMPILE=off" in warnings[0].message
    assert len(accel.compile_failures()) == 1 and "RuntimeError" in accel.compile_failures()[0]
    assert accel.compile_enabled(torch.device("cuda")) is False


def test_an_error_eager_raises_too_is_the_callers_and_keeps_compile_on(monkeypatch):
    monkeypatch.setenv(accel.COMPILE_ENV, "on")
    monkeypatch.setattr(torch, "compile", lambda module, **options: module)
    forward = accel.compiled(torch.nn.Linear(2, 2), torch.device("cpu"))
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        forward(torch.zeros(1, 3))
    assert accel.compile_failures() == []


# --------------------------------------------------------------------------- data


@pytest.mark.parametrize(
    ("nbytes", "device", "free", "expected"),
    [
        (10**9, "cpu", None, "cpu"),
        (25, "cuda", 100, "device"),  # at most a quarter of the free memory
        (26, "cuda", 100, "pinned"),
        (1, "cuda", None, "pinned"),  # free memory unknown: do not guess
    ],
)
def test_a_dataset_goes_on_the_gpu_when_it_fits_a_quarter_of_free_memory(
    nbytes, device, free, expected
):
    assert accel.dataset_placement(nbytes, device, free) == expected


def test_on_cpu_data_stays_where_it_is_and_gathers_plainly():
    images, labels = torch.arange(24, dtype=torch.uint8).view(6, 1, 2, 2), torch.arange(6)
    placed = accel.place_dataset([images, labels], torch.device("cpu"))
    assert placed[0] is images and placed[1] is labels
    index = torch.tensor([4, 0, 4])
    assert torch.equal(accel.gather(images, index, torch.device("cpu")), images[index])


# --------------------------------------------------------------------------- sampling


@pytest.mark.parametrize(
    ("free", "per_image", "expected"),
    [
        (2 * 64 * 2**20, 2**20, 64),  # half the free memory holds exactly 64
        (2 * 64 * 2**20 - 1, 2**20, 32),  # one byte short: the next power of two down
        (2**40, 2**20, accel.SAMPLE_BATCH_CAP),
        (0, 2**20, 1),  # never zero: one image at a time still runs
    ],
)
def test_the_sampling_batch_is_the_largest_power_of_two_half_the_memory_holds(
    free, per_image, expected
):
    assert accel.batch_for_memory(free, per_image) == expected


def test_on_cpu_the_sampling_batch_stays_256():
    assert accel.sample_batch_size(torch.device("cpu"), 10**12) == 256


def test_the_memory_estimate_grows_with_image_size_width_and_depth():
    base = accel.unet_bytes_per_image([32, 64], 1, 16)
    assert base == 2 * 4 * (2 * 32 * 256 + 2 * 64 * 64 + 16 * 32 * 256)
    assert accel.unet_bytes_per_image([32, 64], 1, 32) > base
    assert accel.unet_bytes_per_image([64, 128], 1, 16) > base
    assert accel.unet_bytes_per_image([32, 64], 2, 16) > base


def test_sampling_asks_the_memory_only_when_no_batch_size_is_given(monkeypatch, tiny_shapes):
    trained = engine.train(tiny_shapes, {**TINY, "max_steps": 1})
    asked: list[int] = []
    monkeypatch.setattr(accel, "sample_batch_size", lambda device, b: asked.append(b) or 2)
    totals: list[int] = []
    images = engine.sample(trained, 5, steps=2, progress=lambda s, t: totals.append(t))
    assert len(asked) == 1 and asked[0] > 0 and totals[-1] == math.ceil(5 / 2) * 2
    # Classifier-free guidance doubles the forward batch, and so the estimate.
    unguided: list[int] = []
    monkeypatch.setattr(accel, "sample_batch_size", lambda device, b: unguided.append(b) or 2)
    engine.sample(trained, 5, steps=2, guidance_scale=1.0)
    assert asked[0] == 2 * unguided[0]
    # A batch size the caller names is used as given.
    explicit: list[int] = []
    same = engine.sample(
        trained, 5, steps=2, batch_size=2, progress=lambda s, t: explicit.append(t)
    )
    assert len(asked) == 1 and explicit[-1] == totals[-1] and torch.equal(images, same)
