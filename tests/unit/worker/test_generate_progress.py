from types import SimpleNamespace

from worker.generate import _within_shard


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[int, int, dict]] = []

    def __call__(self, step: int, total: int, **metrics: float) -> None:
        self.calls.append((step, total, metrics))


def test_sampling_steps_inside_a_shard_move_the_job_progress():
    recorder = Recorder()
    ctx = SimpleNamespace(progress=recorder)
    progress = _within_shard(ctx, start=1000, n=500, count=2000)  # type: ignore[arg-type]

    for done in range(1, 51):  # 50 denoising steps over the shard
        progress(done, 50)

    steps = [step for step, _, _ in recorder.calls]
    assert steps[0] == 1010 and steps[-1] == 1500
    assert steps == sorted(steps)
    assert all(total == 2000 for _, total, _ in recorder.calls)
    assert recorder.calls[0][2] == {"images": 1000}
