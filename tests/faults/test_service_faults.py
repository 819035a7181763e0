"""Redis flushed or down, Postgres restarted under load, beat down for an hour."""

from __future__ import annotations

import signal
import threading
import time
from datetime import timedelta

from sqlalchemy import func, select, update

from core.db import session_scope
from core.jobs.orm import Job, Outbox
from tests.faults.conftest import TERMINAL, Stack
from tests.faults.test_worker_faults import submit, train_body
from tests.servers import wait_for


def test_redis_flushall_with_jobs_queued_and_running_loses_none_and_runs_none_twice(
    stack: Stack,
):
    client = stack.tenant()
    stack.beat()
    stack.worker()
    ids = [submit(client, train_body(f"flush-{i}", max_steps=60)) for i in range(3)]
    stack.wait_step(ids[0], 5)  # the first runs, the others wait in Redis

    assert stack.redis.cli("FLUSHALL") == "OK"

    for job_id in ids:
        done = stack.wait_job(job_id, TERMINAL)
        assert done.status == "succeeded", done.error
        assert done.attempts == 1  # ran once: never two runs of it, at once or in turn
        assert stack.events(job_id) == ["queued", "running", "succeeded"]


def test_submit_with_redis_down_answers_201_and_the_job_runs_once_redis_is_back(stack: Stack):
    client = stack.tenant()
    stack.beat()
    stack.worker()
    stack.redis.stop()

    response = client.post("/v1/jobs", json=train_body("offline", max_steps=3))
    assert response.status_code == 201, response.text
    job_id = response.json()["id"]
    with session_scope(stack.settings.database_url) as session:
        outbox = session.scalar(select(Outbox).where(Outbox.job_id == job_id))
        assert outbox is not None and outbox.published_at is None

    stack.redis.start()
    done = stack.wait_job(job_id, TERMINAL)
    assert done.status == "succeeded", done.error
    assert done.attempts == 1


def test_postgres_restart_under_load_answers_503_then_recovers_without_duplicates(stack: Stack):
    client = stack.tenant()
    stack.beat()
    stack.worker()
    long_job = submit(client, train_body("through-restart", max_steps=200, checkpoint_every=25))
    stack.wait_step(long_job, 10)

    keys: list[str] = []
    answers: list[tuple[str, int, str, str | None]] = []
    accepted: list[str] = []
    restarted = threading.Event()

    def load() -> None:
        """Submit jobs, each until it is accepted, retrying refusals as a client would,
        through the outage and on until at least 12 are in (a submit takes milliseconds:
        a fixed dozen could all be in before the server goes down)."""
        while not restarted.is_set() or len(keys) < 12:
            key = f"load-{len(keys)}"
            keys.append(key)
            while True:
                r = client.post(
                    "/v1/jobs", json=train_body(key, max_steps=1), headers={"Idempotency-Key": key}
                )
                retry_after = r.headers.get("retry-after")
                answers.append((key, r.status_code, r.headers["content-type"], retry_after))
                if r.status_code == 201:
                    accepted.append(r.json()["id"])
                    break
                time.sleep(0.2)  # a client's pause before its retry
            time.sleep(0.05)  # a steady trickle, not a flood of jobs for the worker

    thread = threading.Thread(target=load)
    thread.start()
    wait_for(lambda: len(answers) >= 3, 30, "load running")
    try:
        stack.restart_postgres(until=lambda: any(a[1] != 201 for a in answers))
    finally:
        restarted.set()
    thread.join(timeout=120)
    assert not thread.is_alive()

    refused = [a for a in answers if a[1] != 201]
    # A key's row is written in the job's own statement, so a request the outage cut off
    # leaves no claim behind: its retries are refused with 503 only, never 409.
    assert {a[1] for a in refused} == {503}
    assert all(a[3] for a in refused)  # Retry-After
    assert all(a[2] == "application/problem+json" for a in refused)
    with session_scope(stack.settings.database_url) as session:
        names = session.scalars(
            select(func.count(Job.id))
            .where(Job.request["model_name"].as_string().in_(keys))
            .group_by(Job.request["model_name"].as_string())
        ).all()
        assert list(names) == [1] * len(keys)  # every job once, none twice
    for job_id in accepted:  # the load jobs are not what this test waits for
        client.post(f"/v1/jobs/{job_id}/cancel")
    done = stack.wait_job(long_job, TERMINAL)
    assert done.status == "succeeded", done.error


def test_beat_down_for_an_hour_leaves_nothing_stuck_once_it_returns(stack: Stack):
    client = stack.tenant()
    worker = stack.worker()
    orphaned = submit(client, train_body("orphaned", max_steps=200, checkpoint_every=20))
    stack.wait_step(orphaned, 25)
    worker.signal(signal.SIGKILL)  # dies holding a running job
    worker.proc.wait(timeout=10)
    lost = submit(client, train_body("lost", max_steps=3))
    assert stack.redis.cli("FLUSHALL") == "OK"  # and a queued job's message is gone

    hour = timedelta(hours=1)  # an hour passes with no beat
    ids = [orphaned, lost]
    with session_scope(stack.settings.database_url) as session:
        session.execute(
            update(Job)
            .where(Job.id.in_(ids))
            .values(created_at=Job.created_at - hour, heartbeat_at=Job.heartbeat_at - hour)
        )
        session.execute(
            update(Outbox).where(Outbox.job_id.in_(ids)).values(created_at=Outbox.created_at - hour)
        )
    stack.worker()
    stack.beat()

    for job_id in (orphaned, lost):
        done = stack.wait_job(job_id, TERMINAL)
        assert done.status == "succeeded", done.error
