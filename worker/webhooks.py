"""The ``deliver_webhooks`` task's logic: send one job's due deliveries, oldest event first.

One sender per job at a time (a lease on the delivery it is sending), and a job's next
event waits until the one before it is settled, so a receiver sees a job's events in
order. A delivery that must wait for a retry ends this run; the run that set its time
publishes the next one with that countdown (the reconciler's sweep backs that up).

Each attempt resolves the URL's host again, checks every address (core/webhooks/ssrf.py)
and connects to the address it checked, sending the name as Host and TLS server name.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

import httpx
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.config import Settings
from core.db import as_utc, session_scope, utcnow
from core.jobs import events
from core.jobs.orm import Job, JobEvent
from core.webhooks import service as webhooks
from core.webhooks import signing, ssrf
from core.webhooks.orm import WebhookAttempt, WebhookDelivery

log = logging.getLogger("synthgen.webhooks")

MAX_RESPONSE_BYTES = 4096
USER_AGENT = "synthgen-webhooks/1"


@dataclass(frozen=True)
class Message:
    delivery_id: str
    url: str
    msg_id: str
    body: bytes
    keys: list[str]


def deliver(
    job_id: str, *, settings: Settings, resolver: ssrf.Resolver = ssrf.resolve
) -> dict[str, int]:
    """Send what is due for ``job_id``; returns how many deliveries ended in each status."""
    counts: dict[str, int] = {}
    client = _http_client(settings.webhook_timeout_s)
    while (message := _next_message(settings, job_id)) is not None:
        outcome, latency_ms, excerpt = _send(client, message, settings, resolver)
        decision = _settle(settings, message, outcome, latency_ms, excerpt)
        counts[decision.status] = counts.get(decision.status, 0) + 1
        if decision.status == "pending":
            assert decision.next_attempt_at is not None
            wait = (decision.next_attempt_at - utcnow()).total_seconds()
            webhooks.publish(settings, job_id, countdown=max(wait, 0.0))
            break
    return counts


@lru_cache(maxsize=4)
def _http_client(timeout_s: float) -> httpx.Client:
    """One client per worker process (made on first use, so after Celery forks): making
    one loads the CA bundle, ~50 ms that would otherwise be added to every delivery."""
    return httpx.Client(timeout=timeout_s, follow_redirects=False, trust_env=False)


def _next_message(settings: Settings, job_id: str) -> Message | None:
    """Lease the job's oldest pending delivery if it is due; None when there is nothing
    to send now (nothing pending, not due yet, or another sender holds it)."""
    gone = (
        select(WebhookDelivery.id)
        .where(WebhookDelivery.job_id == job_id, WebhookDelivery.status == "gone")
        .limit(1)
        .scalar_subquery()
    )
    with session_scope(settings.database_url) as session:
        row = session.execute(
            select(WebhookDelivery, Job, JobEvent, gone)
            .join(Job, Job.id == WebhookDelivery.job_id)
            .join(JobEvent, JobEvent.id == WebhookDelivery.event_id)
            .where(WebhookDelivery.job_id == job_id, WebhookDelivery.status == "pending")
            .order_by(WebhookDelivery.event_id, WebhookDelivery.created_at)
            .limit(1)
        ).first()
        if row is None:
            return None
        head, job, event, gone_id = row
        if gone_id is not None:
            _cancel_pending(session, job_id, gone_id)
            return None
        if head.next_attempt_at is not None and as_utc(head.next_attempt_at) > utcnow():
            return None
        lease_s = 2 * settings.webhook_timeout_s + 30
        if not webhooks.update_lease(session=session, delivery_id=head.id, lease_s=lease_s):
            return None
        secret = webhooks.get_secret(session=session, tenant_id=job.tenant_id)
        payload = events.render(event, request=job.request, base_url=settings.public_url)
        return Message(
            delivery_id=head.id,
            url=head.url,
            msg_id=events.public_id(event.id),
            body=json.dumps(payload, separators=(",", ":")).encode(),
            keys=webhooks.signing_keys(secret, settings.webhook_secret_overlap_s),
        )


def _cancel_pending(session: Session, job_id: str, gone_id: str) -> None:
    """Once a receiver answered 410 Gone, the job's pending deliveries are canceled."""
    session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.job_id == job_id, WebhookDelivery.status == "pending")
        .values(status="canceled", last_error=f"delivery {gone_id} got 410 Gone", leased_until=None)
        .execution_options(synchronize_session=False)
    )


def _send(
    client: httpx.Client, message: Message, settings: Settings, resolver: ssrf.Resolver
) -> tuple[webhooks.Outcome, float | None, str | None]:
    try:
        addresses = ssrf.check(
            message.url,
            allow_http=settings.webhook_allow_http,
            allowed=settings.webhook_allowed_cidrs,
            resolver=resolver,
        )
    except ssrf.WebhookRefused as exc:
        return webhooks.Outcome(error=f"refused: {exc.message}", refused=True), None, None
    parts = urlsplit(message.url)
    address = addresses[0]
    host_ip = f"[{address}]" if address.version == 6 else str(address)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    pinned = parts._replace(netloc=f"{host_ip}:{port}").geturl()
    headers = {
        **signing.headers(message.keys, message.msg_id, int(time.time()), message.body),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "host": parts.netloc.rsplit("@", 1)[-1],
    }
    extensions = {"sni_hostname": parts.hostname} if parts.scheme == "https" else {}
    started = time.perf_counter()
    try:
        with client.stream(
            "POST", pinned, content=message.body, headers=headers, extensions=extensions
        ) as response:
            latency_ms = 1000 * (time.perf_counter() - started)
            excerpt = b""
            for chunk in response.iter_bytes():
                excerpt += chunk
                if len(excerpt) >= MAX_RESPONSE_BYTES:
                    break
            text = excerpt[:MAX_RESPONSE_BYTES].decode("utf-8", errors="replace")
            return webhooks.Outcome(status_code=response.status_code), latency_ms, text
    except httpx.TimeoutException:
        error = f"timed out after {settings.webhook_timeout_s:g} s"
    except httpx.HTTPError as exc:
        error = f"connection failed: {type(exc).__name__}: {exc}"
    return webhooks.Outcome(error=error), 1000 * (time.perf_counter() - started), None


def _settle(
    settings: Settings,
    message: Message,
    outcome: webhooks.Outcome,
    latency_ms: float | None,
    excerpt: str | None,
) -> webhooks.Decision:
    now = utcnow()
    with session_scope(settings.database_url) as session:
        delivery = session.get(WebhookDelivery, message.delivery_id)
        assert delivery is not None
        delivery.attempts += 1
        session.add(
            WebhookAttempt(
                delivery_id=delivery.id,
                attempted_at=now,
                status_code=outcome.status_code,
                latency_ms=round(latency_ms, 1) if latency_ms is not None else None,
                error=outcome.error,
                response_body=excerpt,
            )
        )
        decision = webhooks.decide(delivery, outcome, settings=settings, now=now)
        delivery.status = decision.status
        delivery.next_attempt_at = decision.next_attempt_at
        delivery.leased_until = None
        delivery.last_error = decision.reason
        if decision.status == "delivered":
            delivery.delivered_at = now
    if decision.status != "pending":
        log.info("webhook %s of job %s: %s", message.msg_id, delivery.job_id, decision.status)
    return decision
