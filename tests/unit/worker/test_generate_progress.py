from types import SimpleNamespace

from worker.generate import _within_shard
from worker.sampling import SAMPLE_BATCH


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[int, int, dict]] = []

    def __call__(self, step: int, total: int, **metrics: float) -> None:
        self.calls.append((step, total, metrics))


def _steps_of_a_shard(start: int, n: int, count: int, steps_per_batch: int) -> Recorder:
    """Drive the callback as an engine does: ``total`` = batches × steps per batch."""
    recorder = Recorder()
    progress = _within_shard(SimpleNamespace(progress=recorder), start=start, n=n, count=count)  # type: ignore[arg-type]
    batches = -(-n // SAMPLE_BATCH)
    total = batches * steps_per_batch
    for done in range(1, total + 1):
        progress(done, total)
    return recorder


def test_sampling_steps_inside_a_shard_move_the_job_progress():
    recorder = _steps_of_a_shard(start=1000, n=500, count=2000, steps_per_batch=50)

    steps = [step for step, _, _ in recorder.calls]
    assert steps[0] == 1005 and steps[-1] == 1500  # 2 batches × 50 steps
    assert steps == sorted(steps)
    assert all(total == 2000 for _, total, _ in recorder.calls)


def test_images_count_the_finished_batches_of_the_first_shard():
    n = 2 * SAMPLE_BATCH + 88  # three batches; the last one is short
    recorder = _steps_of_a_shard(start=0, n=n, count=n, steps_per_batch=10)

    images = [metrics["images"] for _, _, metrics in recorder.calls]
    assert images[:9] == [0] * 9  # nothing finished during the first batch's steps
    assert images[9] == SAMPLE_BATCH  # the first batch's last step
    assert images[19] == 2 * SAMPLE_BATCH
    assert images[-1] == n
    assert sorted(set(images)) == [0, SAMPLE_BATCH, 2 * SAMPLE_BATCH, n]  # whole images only


def test_images_of_a_later_shard_start_from_the_images_already_made():
    recorder = _steps_of_a_shard(start=1000, n=SAMPLE_BATCH, count=2000, steps_per_batch=1)

    assert [metrics["images"] for _, _, metrics in recorder.calls] == [1000 + SAMPLE_BATCH]
