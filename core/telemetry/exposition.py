"""Prometheus exposition for the API and the workers, in one or many processes.

In multiprocess mode (core/telemetry/multiproc.py) a scrape is answered from a fresh
registry holding a MultiProcessCollector, which merges every process's files: the
default registry would only hold the answering process's own samples. Values computed
at scrape time (database gauges, GPU state) come from collectors added to that registry;
they run in the answering process only, so they never need merging.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Iterable

from prometheus_client import REGISTRY, CollectorRegistry, multiprocess
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from core.telemetry import multiproc


class _DefaultRegistry(Collector):
    """The default registry's metrics, for a process not in multiprocess mode."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


def registry(*collectors: Collector) -> CollectorRegistry:
    """A registry with this service's metrics from all its processes, plus ``collectors``."""
    reg = CollectorRegistry(auto_describe=True)
    path = multiproc.current_dir()
    if path is not None:
        multiprocess.MultiProcessCollector(reg, path=path)
    else:
        reg.register(_DefaultRegistry())
    for collector in collectors:
        reg.register(collector)
    return reg


def mark_dead_at_exit() -> None:
    """Drop this process's live gauges when it exits (uvicorn has no child-exit hook)."""
    if multiproc.current_dir() is not None:
        atexit.register(multiprocess.mark_process_dead, os.getpid())


def mark_dead(pid: int) -> None:
    if multiproc.current_dir() is not None:
        multiprocess.mark_process_dead(pid)
