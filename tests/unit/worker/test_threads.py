"""How a worker process chooses torch's CPU threads (worker/threads.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import Settings
from worker.threads import Threads, apply, cgroup_quota, choose_threads, explicit_threads


def test_a_single_process_uses_every_core_it_may_run_on() -> None:
    assert choose_threads(cores=8, concurrency=1) == Threads(intra_op=8, inter_op=1)


def test_a_prefork_pool_divides_the_cores_among_its_processes() -> None:
    assert choose_threads(cores=8, concurrency=4).intra_op == 2
    assert choose_threads(cores=8, concurrency=3).intra_op == 2  # rounded down, never over


def test_a_cgroup_quota_below_the_affinity_mask_bounds_the_threads() -> None:
    assert choose_threads(cores=64, concurrency=2, quota=8.0).intra_op == 4
    assert choose_threads(cores=64, concurrency=1, quota=2.5).intra_op == 2


def test_a_quota_above_the_affinity_mask_changes_nothing() -> None:
    assert choose_threads(cores=4, concurrency=1, quota=16.0).intra_op == 4


def test_reserved_cores_are_left_to_the_other_processes_of_the_host() -> None:
    # The embedded stack: a job worker beside the preview worker on a 2-core machine.
    assert choose_threads(cores=2, concurrency=1, reserved=1).intra_op == 1
    assert choose_threads(cores=16, concurrency=3, reserved=1).intra_op == 5


def test_every_process_gets_at_least_one_thread() -> None:
    assert choose_threads(cores=2, concurrency=8).intra_op == 1
    assert choose_threads(cores=1, concurrency=1, reserved=1).intra_op == 1
    assert choose_threads(cores=4, concurrency=1, quota=0.5).intra_op == 1


def test_the_setting_overrides_the_choice() -> None:
    chosen = choose_threads(cores=2, concurrency=4, quota=1.0, reserved=1, override=6)
    assert chosen == Threads(intra_op=6, inter_op=1)


@pytest.mark.parametrize(
    ("content", "cores"),
    [("200000 100000\n", 2.0), ("150000 100000\n", 1.5), ("max 100000\n", None)],
)
def test_the_cgroup_v2_cpu_max_file_reads_as_cores(
    tmp_path: Path, content: str, cores: float | None
) -> None:
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text(content)
    assert cgroup_quota(cpu_max) == cores


def test_no_cgroup_file_means_no_quota(tmp_path: Path) -> None:
    assert cgroup_quota(tmp_path / "absent") is None


def test_apply_gives_torch_the_chosen_threads_and_logs_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import torch

    before = torch.get_num_threads()
    try:
        with caplog.at_level("INFO", logger="synthgen.worker"):
            chosen = apply(Settings(torch_threads=3), concurrency=1)
        assert chosen.intra_op == 3
        assert torch.get_num_threads() == 3
        assert "torch threads: 3 intra-op" in caplog.text
    finally:
        torch.set_num_threads(before)


def test_omp_num_threads_is_an_operators_choice_and_the_setting_wins_over_it() -> None:
    assert explicit_threads(Settings(), {"OMP_NUM_THREADS": "1"}) == 1
    assert explicit_threads(Settings(torch_threads=4), {"OMP_NUM_THREADS": "1"}) == 4
    assert explicit_threads(Settings(), {}) is None
    assert explicit_threads(Settings(), {"OMP_NUM_THREADS": "0"}) is None
    assert explicit_threads(Settings(), {"OMP_NUM_THREADS": "two"}) is None
