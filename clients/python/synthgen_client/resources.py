"""The SDK's resource namespaces: ``client.jobs``, ``client.jobs.artifacts`` and
``client.models``, and the preview result. Each call goes through ``Client._call``, which
retries 429/503 with backoff; ``jobs.create`` sets an Idempotency-Key itself, so a retried
submit never makes a second job."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from synthgen_client.sdk import Client

Json = dict[str, Any]
TERMINAL = {"succeeded", "failed", "canceled"}


@dataclass(frozen=True)
class PreviewImage:
    """A preview grid: the PNG, which model version drew it, and whether the worker had
    that model loaded already."""

    png: bytes
    model_version: str
    cache_hit: bool
    preview_id: str


class Artifacts:
    def __init__(self, client: Client) -> None:
        self._client = client

    def list(self, job_id: str) -> list[Json]:
        """Every artifact of the job, all pages."""
        return self._client.artifacts(job_id)

    def download(
        self,
        job_id: str,
        directory: Path,
        *,
        on_file: Callable[[Path, int, int], None] | None = None,
    ) -> list[Path]:
        """Every artifact into ``directory``, verified against the listing."""
        return self._client.download_artifacts(job_id, directory, on_file=on_file)


class Jobs:
    def __init__(self, client: Client) -> None:
        self._client = client
        self.artifacts = Artifacts(client)

    def create(self, body: Json, *, idempotency_key: str | None = None) -> Json:
        """Submit a job; a key is made when none is given, so retries are safe."""
        return self._client.submit(body, idempotency_key=idempotency_key or str(uuid.uuid4()))

    def get(self, job_id: str) -> Json:
        return self._client.get(job_id)

    def list(self, *, status: str | None = None, kind: str | None = None) -> Iterator[Json]:
        """Every matching job, newest first (cursors followed to the end)."""
        return self._client.iter_jobs(status=status, kind=kind)

    def cancel(self, job_id: str) -> Json:
        return self._client.cancel(job_id)

    def wait(self, job_id: str, *, timeout_s: float = 3600, poll_s: float = 1.0) -> Json:
        return self._client.wait(job_id, timeout_s=timeout_s, poll_s=poll_s)

    def stream(self, job_id: str, *, poll_s: float = 1.0) -> Iterator[Json]:
        """The job at each of its events (start, progress, output, completed), read from
        the event stream; polls every ``poll_s`` when the stream cannot be read."""
        from synthgen_client import events

        try:
            for event in events.iter_events(self._client.http, job_id):
                yield event.job
            return
        except events.StreamUnavailable:
            pass
        last: tuple[Any, ...] | None = None
        while True:
            job = self.get(job_id)
            progress = job.get("progress") or {}
            key = (job["status"], progress.get("stage"), progress.get("step"))
            if key != last:
                last = key
                yield job
            if job["status"] in TERMINAL:
                return
            time.sleep(poll_s)

    def metrics(self, job_id: str, *, every: int = 1, after: int | None = None) -> Iterator[Json]:
        """A train job's recorded steps (``{"step", "loss", ...}``), all pages."""
        while True:
            params: Json = {"every": every, "limit": 10_000}
            if after is not None:
                params["after"] = after
            page = self._client._call("GET", f"/v1/jobs/{job_id}/metrics", params=params)
            yield from page["items"]
            after = page.get("next_cursor")
            if after is None:
                return


class Models:
    def __init__(self, client: Client) -> None:
        self._client = client

    def list(self) -> list[Json]:
        return self._client._call("GET", "/v1/models")  # type: ignore[no-any-return]

    def versions(self, name: str) -> list[Json]:
        return self._client._call("GET", f"/v1/models/{name}/versions")  # type: ignore[no-any-return]

    def aliases(self, name: str) -> Json:
        """``{"items": [current aliases], "moves": [history, newest first]}``."""
        return self._client._call("GET", f"/v1/models/{name}/aliases")  # type: ignore[no-any-return]

    def set_alias(self, name: str, alias: str, version: int) -> Json:
        return self._client._call(  # type: ignore[no-any-return]
            "PUT", f"/v1/models/{name}/aliases/{alias}", json={"version": version}
        )

    def delete_alias(self, name: str, alias: str) -> None:
        self._client._call("DELETE", f"/v1/models/{name}/aliases/{alias}")
