from core.jobs.states import TERMINAL, TRANSITIONS, JobStatus, can_transition, sources_of


def test_terminal_states_never_change():
    for status in TERMINAL:
        assert TRANSITIONS[status] == frozenset()


def test_the_happy_path_and_cancel_are_allowed():
    assert can_transition(JobStatus.queued, JobStatus.running)
    assert can_transition(JobStatus.running, JobStatus.succeeded)
    assert can_transition(JobStatus.running, JobStatus.failed)
    assert can_transition(JobStatus.queued, JobStatus.canceled)
    assert can_transition(JobStatus.running, JobStatus.canceled)


def test_a_queued_job_cannot_succeed_without_running():
    assert not can_transition(JobStatus.queued, JobStatus.succeeded)


def test_sources_of_canceled_are_the_live_states():
    assert sources_of(JobStatus.canceled) == {JobStatus.queued, JobStatus.running}
