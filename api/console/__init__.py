"""The web console: static HTML, CSS and JavaScript shipped inside the package and served
at ``/console``. No framework, no CDN, no build step: the browser talks to the same REST
API as the SDK, with the key the user types (kept in the tab's sessionStorage only)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

STATIC = Path(__file__).resolve().parent / "static"


def policy(upload_origin: str) -> str:
    """Scripts only from the console itself; images and the report frame may come from the
    object store's presigned URLs (another origin when storage is S3); requests go to the
    API and to the store's upload URLs (the datasets page PUTs files there), nowhere else."""
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob: *; "
        f"frame-src 'self' *; connect-src 'self' {upload_origin}; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    )


class _Hardened:
    """Security headers on every console response."""

    def __init__(self, app: ASGIApp, policy: str) -> None:
        self.app = app
        self.policy = policy.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] += [
                    (b"content-security-policy", self.policy),
                    (b"referrer-policy", b"no-referrer"),
                    (b"x-content-type-options", b"nosniff"),
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def mount(app: FastAPI, *, upload_origin: str) -> None:
    @app.get("/console", include_in_schema=False)
    def console_root() -> RedirectResponse:
        return RedirectResponse("/console/")

    app.mount(
        "/console/",
        _Hardened(StaticFiles(directory=STATIC, html=True), policy(upload_origin)),
        name="console",
    )
