"""A small Python client for the REST API.

Every call that lists follows ``next_cursor`` to the end, and a download checks what it
saved against the listing: a partial result raises, it is never returned as complete.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import httpx

from synthgen_client import events
from synthgen_client.answers import TERMINAL, Json, PreviewImage
from synthgen_client.errors import ApiError, IncompleteDownload, NetworkError, SynthgenClientError
from synthgen_client.resources import Datasets, Jobs, Models

__all__ = [
    "TERMINAL",
    "ApiError",
    "Client",
    "IncompleteDownload",
    "NetworkError",
    "PreviewImage",
    "SynthgenClientError",
]


class Client:
    """The REST API: ``client.jobs``, ``client.jobs.artifacts``, ``client.models`` and
    ``client.preview()``, plus the flat calls the CLI uses. Synchronous on purpose: every
    call is one short HTTP request (waits poll), so an async twin would double the code
    for no throughput a script needs; from asyncio, call it with ``asyncio.to_thread``."""

    RETRY_STATUSES = frozenset({429, 503})

    def __init__(
        self, base_url: str, api_key: str, timeout: float = 30.0, *, retries: int = 4
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retries = retries
        self.http = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout,
        )
        # Artifact URLs are presigned: they must go out without our Authorization header
        # (S3 refuses a request signed twice). One pooled client, not one per file: a new
        # client per download costs ~30 ms of CPU on its TLS context alone.
        self.downloads = httpx.Client(timeout=60)
        self.jobs = Jobs(self)
        self.models = Models(self)
        self.datasets = Datasets(self)

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request, retried with exponential backoff (or the server's Retry-After)
        on 429 and 503, and on a dropped connection when repeating it is safe (GET, or a
        POST that carries an Idempotency-Key)."""
        safe = method == "GET" or "Idempotency-Key" in (kwargs.get("headers") or {})
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = self.http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                if safe and not last and not isinstance(exc, httpx.ConnectError):
                    time.sleep(min(0.5 * 2**attempt, 8.0))
                    continue
                raise NetworkError(
                    f"cannot reach the API at {self.base_url} ({type(exc).__name__}: {exc}); "
                    "is `synthgen up` running? set SYNTHGEN_API_URL or pass --api-url"
                ) from exc
            if response.status_code not in self.RETRY_STATUSES or last:
                break
            time.sleep(_retry_after(response) or min(0.5 * 2**attempt, 8.0))
        if response.status_code >= 400:
            try:
                problem = response.json()
            except ValueError:
                problem = {"title": response.reason_phrase, "detail": response.text[:200]}
            raise ApiError(problem if isinstance(problem, dict) else {}, response.status_code)
        return response

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._send(method, path, **kwargs)
        return None if response.status_code == 204 else response.json()

    def preview(
        self,
        model: str,
        *,
        labels: list[int] | None = None,
        count: int | None = None,
        seed: int = 0,
        scale: int | str | None = None,
        timeout_s: float = 300,
        **options: Any,
    ) -> PreviewImage:
        """A grid PNG of ``model`` (one row per class), e.g.
        ``client.preview("digits-ddpm@prod", labels=[3, 7], steps=20)``. ``scale``: each
        pixel drawn scale×scale, or "auto" (short side at least 256 px); None: the
        samples' own size. When the API answers 202 (a busy worker) this polls the
        preview until it is drawn."""
        body: Json = {"labels": labels, "seed": seed, "config": options}
        if count is not None:
            body["count"] = count
        if scale is not None:
            body["scale"] = scale
        # The server holds the answer up to its SYNTHGEN_PREVIEW_WAIT_S (30 s) before a 202:
        # a read timeout of the client's default 30 s would give up just before that 202.
        response = self._send(
            "POST", f"/v1/models/{model}/preview", json=body, timeout=max(timeout_s, 60.0)
        )
        if response.status_code == 200:
            return PreviewImage(
                response.content,
                response.headers.get("X-Model-Version", model),
                response.headers.get("X-Preview-Cache") == "hit",
                response.headers.get("X-Preview-Id", ""),
            )
        preview = response.json()
        deadline = time.monotonic() + timeout_s
        while preview["status"] not in TERMINAL:
            if time.monotonic() > deadline:
                raise TimeoutError(f"preview {preview['id']} not drawn after {timeout_s:g} s")
            time.sleep(1.0)
            preview = self._call("GET", httpx.URL(preview["urls"]["get"]).path)
        if preview["status"] != "succeeded":
            raise ApiError({"title": "Preview failed", **(preview.get("error") or {})}, 500)
        version = preview["model_version"]
        png = self.downloads.get(preview["urls"]["image"]).content
        return PreviewImage(
            png,
            f"{version['name']}:{version['version']}",
            bool(preview["cache_hit"]),
            preview["id"],
        )

    # -- jobs -----------------------------------------------------------------------------

    def submit(self, body: Json, idempotency_key: str | None = None) -> Json:
        """Submit a job (``client.jobs.create`` is the same call): see :meth:`submit_job`."""
        return self.submit_job(body, idempotency_key)[0]

    def submit_job(self, body: Json, idempotency_key: str | None = None) -> tuple[Json, bool]:
        """The job, and whether an earlier submit with the caller's ``idempotency_key``
        made it (the API's ``Idempotent-Replayed: true``): no new job.

        Every submit carries an Idempotency-Key, one made here when none is given, so a
        submit retried after a dropped connection (``_send`` repeats a keyed POST) never
        makes a second job. The one path every surface takes: ``jobs.create``,
        ``submit`` and the CLI's ``jobs submit``. A replay of a key made here is this
        call's own retry, so it is not reported as an earlier submit's job."""
        key = idempotency_key or str(uuid.uuid4())
        response = self._send("POST", "/v1/jobs", json=body, headers={"Idempotency-Key": key})
        replayed = response.headers.get("Idempotent-Replayed") == "true"
        return response.json(), replayed and idempotency_key is not None

    def estimate(self, body: Json) -> Json:
        """``{"seconds", "basis"}``: how long the job would run, measured from this
        tenant's finished jobs of its kind and engine (seconds null when none); the body
        is checked as a submit checks it, and nothing is submitted."""
        return self._call("POST", "/v1/estimates", json=body)  # type: ignore[no-any-return]

    def resolve_job_id(self, ref: str) -> str:
        """A job id from the id or its first characters (the short ids the CLI prints);
        LookupError when none or several of this tenant's jobs start with ``ref``."""
        if len(ref) >= 36:
            return ref
        found = [job["id"] for job in self.iter_jobs(page_size=200) if job["id"].startswith(ref)]
        if len(found) == 1:
            return str(found[0])
        if not found:
            raise LookupError(f"no job id starts with {ref!r} (synthgen jobs list shows yours)")
        shown = ", ".join(found[:3]) + (" …" if len(found) > 3 else "")
        raise LookupError(f"{ref!r} starts {len(found)} job ids ({shown}); give more of the id")

    def get(self, job_id: str) -> Json:
        return self._call("GET", f"/v1/jobs/{job_id}")  # type: ignore[no-any-return]

    def list(self, **filters: Any) -> Json:
        """One page of jobs, newest first: ``{"items": [...], "next_cursor": ...}``."""
        params = {k: v for k, v in filters.items() if v is not None}
        return self._call("GET", "/v1/jobs", params=params)  # type: ignore[no-any-return]

    def iter_jobs(
        self, *, status: str | None = None, kind: str | None = None, page_size: int = 100
    ) -> Iterator[Json]:
        """Every job matching the filters, newest first, following cursors to the end."""
        cursor = None
        while True:
            page = self.list(status=status, kind=kind, limit=page_size, cursor=cursor)
            yield from page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return

    def cancel(self, job_id: str) -> Json:
        return self._call("POST", f"/v1/jobs/{job_id}/cancel")  # type: ignore[no-any-return]

    def artifacts(self, job_id: str, *, page_size: int = 1000) -> list[Json]:
        """Every artifact of the job, following cursors to the end."""
        items: list[Json] = []
        cursor = None
        while True:
            params: Json = {"limit": page_size}
            if cursor:
                params["cursor"] = cursor
            page = self._call("GET", f"/v1/jobs/{job_id}/artifacts", params=params)
            items.extend(page["items"])
            cursor = page.get("next_cursor")
            if not cursor:
                return items

    def wait(
        self,
        job_id: str,
        *,
        poll_s: float = 1.0,
        timeout_s: float = 3600,
        on_update: Callable[[Json], None] | None = None,
    ) -> Json:
        """The job once it has ended. Follows the job's event stream (``on_update`` sees
        the job at each event: start, progress, output, completed) and polls every
        ``poll_s`` when the stream cannot be read. TimeoutError after ``timeout_s``."""
        try:
            return events.wait_for_job(self.http, job_id, timeout_s, on_update, poll_s=poll_s)
        except httpx.TransportError as exc:
            raise NetworkError(f"lost the API at {self.base_url} while waiting: {exc}") from exc

    def webhook_secret(self, *, rotate: bool = False) -> str:
        """The tenant's webhook signing secret (``whsec_…``); ``rotate`` makes a new one
        (deliveries carry the old one's signature as well for 24 h)."""
        path = "/v1/webhooks/secret/rotate" if rotate else "/v1/webhooks/secret"
        return str(self._call("POST" if rotate else "GET", path)["key"])

    def engines(self) -> list[Json]:
        """Each engine with its train options: type, default (or the rule by image size),
        bounds, help; what a train job's ``config`` takes."""
        return list(self._call("GET", "/v1/engines"))

    def pages(self, path: str, *, page_size: int = 200) -> list[Json]:
        """Every item of a cursor-paginated listing (``items``, ``next_cursor``)."""
        items: list[Json] = []
        cursor = None
        while True:
            params: Json = {"limit": page_size}
            if cursor:
                params["cursor"] = cursor
            page = self._call("GET", path, params=params)
            items.extend(page["items"])
            cursor = page.get("next_cursor")
            if not cursor:
                return items

    # -- uploads --------------------------------------------------------------------------

    def upload(
        self, target: Json, path: Path, *, on_bytes: Callable[[int], None] | None = None
    ) -> None:
        """Send ``path`` where an ``upload`` answer says: one PUT, or its parts in order.
        The URLs are signed, so they go out without our Authorization header."""
        parts = (
            [(target["url"], 0, path.stat().st_size)]
            if target["method"] == "PUT"
            else [
                (p["url"], (p["part_number"] - 1) * target["part_size"], target["part_size"])
                for p in target["parts"]
            ]
        )
        sent = 0
        with path.open("rb") as source:
            for url, offset, length in parts:
                source.seek(offset)
                chunk = source.read(length)
                try:
                    response = self.downloads.put(url, content=chunk, timeout=300)
                except httpx.TransportError as exc:
                    raise NetworkError(f"upload of {path.name} failed: {exc}") from exc
                if response.status_code >= 400:
                    raise ApiError(
                        {"title": response.reason_phrase, "detail": f"upload of {path.name}"},
                        response.status_code,
                    )
                sent += len(chunk)
                if on_bytes is not None:
                    on_bytes(sent)

    # -- downloads ------------------------------------------------------------------------

    def download(self, url: str, path: Path, *, expected_size: int | None = None) -> Path:
        """Save one URL to ``path``; with ``expected_size`` a short file raises."""
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self.downloads.stream("GET", url) as response:
                if response.status_code >= 400:
                    raise ApiError(
                        {"title": response.reason_phrase, "detail": f"download of {path.name}"},
                        response.status_code,
                    )
                with path.open("wb") as out:
                    for chunk in response.iter_bytes():
                        out.write(chunk)
        except httpx.TransportError as exc:
            raise NetworkError(f"download of {path.name} failed: {exc}") from exc
        if expected_size is not None and path.stat().st_size != expected_size:
            raise IncompleteDownload(
                f"{path.name}: saved {path.stat().st_size} bytes, the listing says {expected_size}",
                missing=[path.name],
            )
        return path

    def download_artifacts(
        self,
        job_id: str,
        directory: Path,
        *,
        on_file: Callable[[Path, int, int], None] | None = None,
    ) -> list[Path]:
        """Download every artifact of a job into ``directory`` and verify the result.

        The listing is followed to its end; afterwards each file's size must equal the
        listing's, and the number of files the job's ``result.artifacts`` announces (when
        it says) must equal the number listed. Raises IncompleteDownload otherwise.
        ``on_file(path, done, total)`` is called after each file.
        """
        items = self.artifacts(job_id)
        announced = (self.get(job_id).get("result") or {}).get("artifacts")
        if isinstance(announced, int) and announced != len(items):
            raise IncompleteDownload(
                f"job {job_id} announces {announced} artifacts but the API listed "
                f"{len(items)}; nothing is reported complete",
                missing=[],
            )
        saved: list[Path] = []
        for item in items:
            target = directory / _safe_relative(item["name"])
            self.download(item["url"], target, expected_size=int(item["size"]))
            saved.append(target)
            if on_file is not None:
                on_file(target, len(saved), len(items))
        missing = [
            i["name"] for i in items if not (directory / _safe_relative(i["name"])).is_file()
        ]
        if missing:
            raise IncompleteDownload(
                f"{len(missing)} of {len(items)} artifacts are missing after the download "
                f"(first: {missing[0]})",
                missing=missing,
            )
        return saved


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    return min(float(value), 60.0) if value.replace(".", "", 1).isdigit() else None


def _safe_relative(name: str) -> Path:
    """An artifact name as a path that stays inside the download directory."""
    parts = PurePosixPath(name).parts
    if not parts or PurePosixPath(name).is_absolute() or ".." in parts:
        raise IncompleteDownload(
            f"refusing to write artifact {name!r} outside the directory", missing=[name]
        )
    return Path(*parts)
