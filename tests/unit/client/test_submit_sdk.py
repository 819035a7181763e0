"""Every way of submitting a job (``client.jobs.create``, ``client.submit``, the CLI's
``jobs submit``) sends an Idempotency-Key, so a submit retried after a dropped connection
makes one job, not two."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import pytest
from synthgen_client import cli, sdk
from synthgen_client.sdk import Client

BODY = {"kind": "train", "engine": "ddpm", "dataset": "digits", "model_name": "m"}


class FakeApi:
    """POST /v1/jobs as the API answers it: one job per Idempotency-Key, replayed after."""

    def __init__(self, drop_first: bool = False) -> None:
        self.keys: list[str | None] = []
        self.jobs: dict[str, dict[str, str]] = {}
        self.drop_first = drop_first

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/estimates":
            return httpx.Response(200, json={"seconds": None, "basis": "no finished jobs"})
        assert (request.method, request.url.path) == ("POST", "/v1/jobs")
        assert json.loads(request.content) == BODY
        key = request.headers.get("Idempotency-Key")
        self.keys.append(key)
        replayed = key in self.jobs
        if not replayed:
            self.jobs[str(key)] = {"id": str(uuid.uuid4()), "kind": "train", "status": "queued"}
        if self.drop_first and len(self.keys) == 1:
            # The job is committed, but its answer never reaches the client.
            raise httpx.ReadError("connection reset", request=request)
        headers = {"Idempotent-Replayed": "true"} if replayed else {}
        return httpx.Response(201, json=self.jobs[str(key)], headers=headers)


def _client(fake: FakeApi) -> Client:
    client = Client("http://api.test", "sg_key")
    client.http = httpx.Client(transport=httpx.MockTransport(fake), base_url="http://api.test")
    return client


def _is_uuid(key: str | None) -> bool:
    return key is not None and str(uuid.UUID(key)) == key


@pytest.mark.parametrize(
    "submit",
    [
        lambda client: client.jobs.create(BODY),
        lambda client: client.submit(BODY),
        lambda client: client.submit_job(BODY)[0],
    ],
    ids=["jobs.create", "submit", "submit_job"],
)
def test_every_submit_without_a_key_sends_a_fresh_one(submit):
    fake = FakeApi()
    client = _client(fake)
    first, second = submit(client), submit(client)
    assert len(fake.keys) == 2 and all(_is_uuid(key) for key in fake.keys)
    assert fake.keys[0] != fake.keys[1]  # two submits are two jobs
    assert first["id"] != second["id"]


def test_a_given_key_is_sent_as_given_and_its_replay_is_reported():
    fake = FakeApi()
    client = _client(fake)
    job, replayed = client.submit_job(BODY, idempotency_key="run-7")
    again, replayed_again = client.submit_job(BODY, idempotency_key="run-7")
    assert fake.keys == ["run-7", "run-7"]
    assert (replayed, replayed_again) == (False, True)
    assert again == job
    assert client.jobs.create(BODY, idempotency_key="run-7") == job


@pytest.mark.parametrize("via", ["submit", "jobs.create"])
def test_a_dropped_submit_is_retried_with_its_key_and_makes_one_job(via, monkeypatch):
    monkeypatch.setattr(sdk.time, "sleep", lambda s: None)  # the backoff, not a sync point
    fake = FakeApi(drop_first=True)
    client = _client(fake)
    job = client.submit(BODY) if via == "submit" else client.jobs.create(BODY)
    assert len(fake.keys) == 2 and fake.keys[0] == fake.keys[1]
    assert list(fake.jobs.values()) == [job]


def test_a_retry_of_a_key_made_by_the_client_is_not_called_an_earlier_job(monkeypatch):
    monkeypatch.setattr(sdk.time, "sleep", lambda s: None)
    client = _client(FakeApi(drop_first=True))
    _, replayed = client.submit_job(BODY)
    assert replayed is False  # the replay was this call's own retry: the job is new


def test_the_cli_submit_sends_a_key(tmp_path: Path, monkeypatch, capsys):
    fake = FakeApi()
    client = _client(fake)
    monkeypatch.setattr(cli, "_client", lambda args: client)
    body = tmp_path / "job.json"
    body.write_text(json.dumps(BODY))
    assert cli.main(["jobs", "submit", str(body)]) == 0
    assert cli.main(["jobs", "submit", str(body), "--idempotency-key", "k1"]) == 0
    assert cli.main(["jobs", "submit", str(body), "--idempotency-key", "k1"]) == 0
    assert _is_uuid(fake.keys[0]) and fake.keys[1:] == ["k1", "k1"]
    out = capsys.readouterr().out
    assert out.count("submitted train job") == 2
    assert "idempotency key 'k1' already made it" in out
