"""A small Python client for the REST API."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

TERMINAL = {"succeeded", "failed", "canceled"}


class ApiError(Exception):
    def __init__(self, problem: dict[str, Any], status: int) -> None:
        super().__init__(f"{status} {problem.get('title', '')}: {problem.get('detail', '')}")
        self.problem = problem
        self.status = status


class Client:
    def __init__(self, base_url: str, api_key: str, timeout: float = 30.0) -> None:
        self.http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout,
        )

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, path, **kwargs)
        if response.status_code >= 400:
            try:
                problem = response.json()
            except ValueError:
                problem = {"title": response.reason_phrase, "detail": response.text}
            raise ApiError(problem, response.status_code)
        return response.json()

    def submit(self, body: dict[str, Any], idempotency_key: str | None = None) -> dict[str, Any]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return self._call("POST", "/v1/jobs", json=body, headers=headers)  # type: ignore[no-any-return]

    def get(self, job_id: str) -> dict[str, Any]:
        return self._call("GET", f"/v1/jobs/{job_id}")  # type: ignore[no-any-return]

    def list(self, **filters: str) -> dict[str, Any]:
        return self._call("GET", "/v1/jobs", params=filters)  # type: ignore[no-any-return]

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self._call("POST", f"/v1/jobs/{job_id}/cancel")  # type: ignore[no-any-return]

    def artifacts(self, job_id: str) -> list[dict[str, Any]]:
        return self._call("GET", f"/v1/jobs/{job_id}/artifacts")["items"]  # type: ignore[no-any-return]

    def models(self) -> list[dict[str, Any]]:
        return self._call("GET", "/v1/models")  # type: ignore[no-any-return]

    def versions(self, name: str) -> list[dict[str, Any]]:
        return self._call("GET", f"/v1/models/{name}/versions")  # type: ignore[no-any-return]

    def wait(
        self,
        job_id: str,
        *,
        poll_s: float = 1.0,
        timeout_s: float = 3600,
        on_update: Any = None,
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            job = self.get(job_id)
            if on_update is not None:
                on_update(job)
            if job["status"] in TERMINAL:
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {job['status']} after {timeout_s}s")
            time.sleep(poll_s)

    def download(self, url: str, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        with httpx.stream("GET", url, timeout=60) as response:
            response.raise_for_status()
            with path.open("wb") as out:
                for chunk in response.iter_bytes():
                    out.write(chunk)
        return path
