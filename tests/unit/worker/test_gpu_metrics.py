"""GPU metrics come from NVML: one series per device in base units, none without NVML.
No GPU is lent to these tests, so NVML is a stand-in with its real function names."""

from __future__ import annotations

import sys
import types

import pytest

from worker.metrics import GpuCollector


class NVMLError(Exception):
    pass


def fake_nvml(devices: list[tuple[int, int, int]]) -> types.ModuleType:
    """(utilisation %, used bytes, total bytes) per device, as pynvml reports them."""
    nvml = types.ModuleType("pynvml")
    nvml.nvmlInit = lambda: None
    nvml.nvmlDeviceGetCount = lambda: len(devices)
    nvml.nvmlDeviceGetHandleByIndex = lambda i: devices[i]
    nvml.nvmlDeviceGetUtilizationRates = lambda h: types.SimpleNamespace(gpu=h[0], memory=0)
    nvml.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(used=h[1], total=h[2])
    return nvml


def values(collector: GpuCollector) -> dict[tuple[str, str], float]:
    return {
        (s.name, s.labels["gpu"]): s.value for family in collector.collect() for s in family.samples
    }


def test_each_gpu_reports_utilisation_as_a_ratio_and_memory_in_bytes(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml([(75, 2**30, 2**34), (0, 0, 2**34)]))
    assert values(GpuCollector()) == {
        ("synthgen_gpu_utilization_ratio", "0"): 0.75,
        ("synthgen_gpu_memory_used_bytes", "0"): float(2**30),
        ("synthgen_gpu_memory_total_bytes", "0"): float(2**34),
        ("synthgen_gpu_utilization_ratio", "1"): 0.0,
        ("synthgen_gpu_memory_used_bytes", "1"): 0.0,
        ("synthgen_gpu_memory_total_bytes", "1"): float(2**34),
    }


def test_a_host_where_nvml_fails_reports_no_gpu_series(monkeypatch):
    nvml = fake_nvml([])

    def no_driver() -> None:
        raise NVMLError("NVML Shared Library Not Found")

    nvml.nvmlInit = no_driver
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    assert list(GpuCollector().collect()) == []


@pytest.mark.parametrize("family", ["utilization_ratio", "memory_used_bytes", "memory_total_bytes"])
def test_gpu_families_are_declared_for_the_dashboard_even_without_a_gpu(monkeypatch, family):
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml([]))
    assert f"synthgen_gpu_{family}" in {f.name for f in GpuCollector().describe()}
