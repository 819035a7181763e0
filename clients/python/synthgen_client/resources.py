"""The SDK's resource namespaces: ``client.jobs``, ``client.jobs.artifacts`` and
``client.models``, and the preview result. Each call goes through ``Client._call``, which
retries 429/503 with backoff; a submit always carries an Idempotency-Key (``Client.submit_job``),
so a retried submit never makes a second job."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from synthgen_client import events
from synthgen_client.answers import TERMINAL, Json, PreviewImage

if TYPE_CHECKING:
    # For annotations only, never at run time: the client imports this module.
    from synthgen_client.sdk import Client

__all__ = ["TERMINAL", "Artifacts", "Datasets", "Jobs", "Json", "Models", "PreviewImage"]


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
        """Submit a job; a key is made when none is given, so retries are safe
        (``Client.submit_job``, the one path every surface takes)."""
        return self._client.submit(body, idempotency_key=idempotency_key)

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

    def curves(self, job_id: str, *, every: int = 1, after: int | None = None) -> Iterator[Json]:
        """A train job's training curves: its recorded steps (``{"step", "loss", ...}``),
        all pages; ``every``: the steps divisible by it, and every evaluation's."""
        while True:
            params: Json = {"every": every, "limit": 10_000}
            if after is not None:
                params["after"] = after
            page = self._client._call("GET", f"/v1/jobs/{job_id}/curves", params=params)
            yield from page["items"]
            after = page.get("next_cursor")
            if after is None:
                return

    # The method's first name, kept for scripts written against it.
    metrics = curves


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


class Datasets:
    """Uploaded datasets: ``upload`` (create, send, complete, wait), ``list``, ``get``,
    ``delete``. Jobs name a dataset by its name (unique per tenant) or its id."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def create(self, name: str, fmt: str, *, size: int | None = None, **options: Any) -> Json:
        """A dataset awaiting its upload: the answer's ``upload`` says where to send it."""
        body: Json = {"name": name, "format": fmt, **options}
        if size is not None:
            body["size"] = size
        return self._client._call("POST", "/v1/datasets", json=body)  # type: ignore[no-any-return]

    def upload(
        self,
        path: Path,
        *,
        name: str,
        fmt: str | None = None,
        wait: bool = True,
        timeout_s: float = 3600,
        on_progress: Callable[[str, int, int], None] | None = None,
        **options: Any,
    ) -> Json:
        """Create the dataset, send ``path``, complete it and (``wait``) return it once
        validated (``ready`` or ``invalid``). ``fmt`` defaults from the file's suffix.
        ``on_progress(stage, done, total)``: "upload" in bytes, then "validate"."""
        fmt = fmt or guess_format(path)
        size = path.stat().st_size
        created = self.create(name, fmt, size=size, **options)
        self._client.upload(
            created["upload"],
            path,
            on_bytes=((lambda done: on_progress("upload", done, size)) if on_progress else None),
        )
        self._client._call("POST", f"/v1/datasets/{created['id']}/complete")
        if not wait:
            return self.get(created["id"])
        return self.wait(created["id"], timeout_s=timeout_s, on_progress=on_progress)

    def wait(
        self,
        dataset_id: str,
        *,
        timeout_s: float = 3600,
        on_progress: Callable[[str, int, int], None] | None = None,
    ) -> Json:
        """The dataset once its validation ended (``ready`` or ``invalid``)."""
        deadline = time.monotonic() + timeout_s
        while True:
            dataset = self.get(dataset_id)
            if dataset["status"] in {"ready", "invalid"}:
                return dataset
            job_id = dataset.get("validation_job")
            if on_progress is not None and job_id:
                progress = self._client.get(job_id).get("progress") or {}
                on_progress(
                    "validate", int(progress.get("step") or 0), int(progress.get("total") or 0)
                )
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"dataset {dataset_id} still {dataset['status']} after {timeout_s:g} s"
                )
            time.sleep(0.5)

    def list(self) -> list[Json]:
        """Every dataset of this tenant, newest first (all pages)."""
        return self._client.pages("/v1/datasets")

    def get(self, ref: str) -> Json:
        """A dataset by its id or its name."""
        return self._client._call("GET", f"/v1/datasets/{self.resolve(ref)}")  # type: ignore[no-any-return]

    def delete(self, ref: str) -> None:
        self._client._call("DELETE", f"/v1/datasets/{self.resolve(ref)}")

    def resolve(self, ref: str) -> str:
        """The id of the dataset named ``ref`` (an id is returned as given)."""
        if ref.startswith("ds_"):
            return ref
        for dataset in self.list():
            if dataset["name"] == ref:
                return str(dataset["id"])
        raise LookupError(f"no dataset named {ref!r} (synthgen datasets ls lists yours)")

    def names(self) -> dict[str, str]:
        """id → name of this tenant's datasets (for showing jobs' datasets by name)."""
        return {d["id"]: d["name"] for d in self.list()}


SUFFIX_FORMATS = {".zip": "zip", ".npz": "npz", ".bin": "cifar", ".parquet": "parquet"}


def guess_format(path: Path) -> str:
    """The upload format a file's name says (zip, tar and its compressions, npz, bin,
    parquet). WebDataset shards are tars too: their format is said, never guessed."""
    name = path.name.lower()
    if any(name.endswith(s) for s in (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")):
        return "tar"
    if path.suffix.lower() in SUFFIX_FORMATS:
        return SUFFIX_FORMATS[path.suffix.lower()]
    raise ValueError(
        f"cannot tell the format of {path.name} from its name; pass the format "
        "(zip, tar, npz, cifar, parquet or webdataset)"
    )
