"""Webhooks: per-tenant signing secrets, the delivery rows each selected event queues, and
the retry policy the sender (worker/webhooks.py) follows.

Policy: a 2xx settles a delivery; ``410 Gone`` settles it and cancels everything still
pending for that job; timeouts, connection errors, 429 and 5xx are retried with
exponential backoff and jitter (a ``completed`` event until ``webhook_retry_window_s``
after it happened, other events ``webhook_attempts_non_terminal`` times, then dropped);
any other answer (3xx included: redirects are not followed) is final.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import queue
from core.config import Settings
from core.db import as_utc, utcnow
from core.errors import InvalidTransition, NotFound
from core.jobs.orm import Job
from core.webhooks import signing, ssrf
from core.webhooks.orm import WebhookAttempt, WebhookDelivery, WebhookSecret

log = logging.getLogger("synthgen.webhooks")

DEFAULT_EVENTS = ("start", "completed")
_QUEUED = "synthgen.webhook_jobs"  # session.info key: jobs whose deliveries await a send


class DeliveryNotFound(NotFound):
    title = "Webhook delivery not found"


# -- secrets ------------------------------------------------------------------------------


def get_secret(*, session: Session, tenant_id: str) -> WebhookSecret:
    """The tenant's secret, made on first use."""
    row = session.get(WebhookSecret, tenant_id)
    if row is not None:
        return row
    try:
        with session.begin_nested():
            row = WebhookSecret(tenant_id=tenant_id, key=signing.new_secret())
            session.add(row)
    except IntegrityError:  # another request made it first
        row = session.scalars(
            select(WebhookSecret)
            .where(WebhookSecret.tenant_id == tenant_id)
            .execution_options(populate_existing=True)
        ).one()
    return row


def rotate_secret(*, session: Session, tenant_id: str) -> WebhookSecret:
    """A new secret; the current one keeps signing beside it for the overlap period. A
    second rotation within that period retires the oldest at once."""
    get_secret(session=session, tenant_id=tenant_id)
    row = session.scalars(
        select(WebhookSecret)
        .where(WebhookSecret.tenant_id == tenant_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    row.previous_key, row.key, row.rotated_at = row.key, signing.new_secret(), utcnow()
    session.flush()
    return row


def previous_valid_until(row: WebhookSecret, overlap_s: float) -> datetime | None:
    if row.previous_key is None or row.rotated_at is None:
        return None
    until = as_utc(row.rotated_at) + timedelta(seconds=overlap_s)
    return until if until > utcnow() else None


def signing_keys(row: WebhookSecret, overlap_s: float) -> list[str]:
    previous = row.previous_key if previous_valid_until(row, overlap_s) else None
    return [row.key] + ([previous] if previous else [])


# -- queueing -----------------------------------------------------------------------------


def queue_delivery(*, session: Session, job: Job, event_id: int, event: str) -> None:
    """Queue ``event`` for the job's webhook when its filter selects it (same transaction
    as the event); ``send_queued`` asks a worker to send it once that commits."""
    url = job.request.get("webhook")
    selected = job.request.get("webhook_events_filter") or DEFAULT_EVENTS
    if not url or event not in selected:
        return
    session.add(
        WebhookDelivery(
            job_id=job.id, event_id=event_id, event=event, url=url, next_attempt_at=utcnow()
        )
    )
    session.info.setdefault(_QUEUED, set()).add(job.id)


def send_queued(*, settings: Settings, session: Session) -> None:
    """Call after commit: publish a send task for each job that got deliveries."""
    for job_id in session.info.pop(_QUEUED, set()):
        publish(settings, job_id)


def publish(settings: Settings, job_id: str, countdown: float | None = None) -> None:
    try:
        queue.publish_deliveries(settings, job_id, countdown)
    except Exception:  # noqa: BLE001 - the reconciler's sweep sends what is left pending
        log.warning("could not publish webhook deliveries of job %s", job_id, exc_info=True)


def due_jobs(*, session: Session, older_than_s: float) -> list[str]:
    """Jobs with a delivery due for longer than ``older_than_s`` and nobody sending it:
    its message was lost (a process died after the commit, the broker was down)."""
    now = utcnow()
    return list(
        session.scalars(
            select(WebhookDelivery.job_id)
            .where(
                WebhookDelivery.status == "pending",
                WebhookDelivery.next_attempt_at < now - timedelta(seconds=older_than_s),
                or_(WebhookDelivery.leased_until.is_(None), WebhookDelivery.leased_until < now),
            )
            .distinct()
        )
    )


# -- the log and manual retries -----------------------------------------------------------


def list_deliveries(
    *, session: Session, job_id: str
) -> list[tuple[WebhookDelivery, list[WebhookAttempt]]]:
    rows = list(
        session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.job_id == job_id)
            .order_by(WebhookDelivery.event_id, WebhookDelivery.created_at)
        )
    )
    attempts = attempts_of(session=session, delivery_ids=[row.id for row in rows])
    return [(row, attempts[row.id]) for row in rows]


def attempts_of(*, session: Session, delivery_ids: list[str]) -> dict[str, list[WebhookAttempt]]:
    attempts: dict[str, list[WebhookAttempt]] = {i: [] for i in delivery_ids}
    if delivery_ids:
        for attempt in session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id.in_(delivery_ids))
            .order_by(WebhookAttempt.id)
        ):
            attempts[attempt.delivery_id].append(attempt)
    return attempts


def retry_delivery(
    *, session: Session, settings: Settings, job_id: str, delivery_id: str
) -> WebhookDelivery:
    """Send a delivery again (whatever became of it), with a fresh retry window."""
    row = session.scalar(
        select(WebhookDelivery).where(
            WebhookDelivery.id == delivery_id, WebhookDelivery.job_id == job_id
        )
    )
    if row is None:
        raise DeliveryNotFound(f"no webhook delivery {delivery_id} for job {job_id}")
    gone = session.scalar(
        select(WebhookDelivery.id).where(
            WebhookDelivery.job_id == job_id,
            WebhookDelivery.status == "gone",
            WebhookDelivery.id != row.id,
        )
    )
    if gone is not None:
        raise InvalidTransition(
            f"the receiver answered 410 Gone to delivery {gone} of this job, which stopped its "
            "deliveries; retry that delivery first"
        )
    now = utcnow()
    if row.status != "pending":  # a pending one keeps its lease: its sender may be at it
        row.status, row.leased_until = "pending", None
    row.next_attempt_at = now
    row.give_up_at = now + timedelta(seconds=settings.webhook_retry_window_s)
    session.flush()
    session.info.setdefault(_QUEUED, set()).add(job_id)
    return row


# -- the sender's policy ------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What one attempt got: an HTTP status, or an error that prevented one."""

    status_code: int | None = None
    error: str | None = None
    refused: bool = False  # the address check failed: never retried

    @property
    def retryable(self) -> bool:
        if self.refused:
            return False
        if self.status_code is None:
            return True  # timeout or connection error
        return self.status_code == 429 or self.status_code >= 500


@dataclass(frozen=True)
class Decision:
    status: str  # pending | delivered | failed | dropped | gone
    next_attempt_at: datetime | None = None
    reason: str | None = None


def backoff_s(settings: Settings, attempts: int) -> float:
    """Delay before try ``attempts + 1``: doubling from base up to max, drawn in [d/2, d]
    so that receivers coming back up are not hit by every sender at the same instant."""
    delay = min(
        settings.webhook_retry_base_s * 2 ** max(attempts - 1, 0), settings.webhook_retry_max_s
    )
    return delay / 2 + random.uniform(0, delay / 2)  # noqa: S311 - jitter, not a secret


def decide(
    delivery: WebhookDelivery, outcome: Outcome, *, settings: Settings, now: datetime
) -> Decision:
    """The state of ``delivery`` after its attempt number ``delivery.attempts``."""
    code = outcome.status_code
    if code is not None and 200 <= code < 300:
        return Decision("delivered")
    if code == 410:
        return Decision("gone", reason="the receiver answered 410 Gone: no more deliveries")
    what = f"HTTP {code}" if code is not None else (outcome.error or "no answer")
    if not outcome.retryable:
        return Decision("failed", reason=f"{what} (final)")
    if delivery.event != "completed":
        if delivery.attempts >= settings.webhook_attempts_non_terminal:
            return Decision("dropped", reason=f"{what}; gave up after {delivery.attempts} tries")
    else:
        window = timedelta(seconds=settings.webhook_retry_window_s)
        give_up = (
            as_utc(delivery.give_up_at)
            if delivery.give_up_at
            else as_utc(delivery.created_at) + window
        )
        if now >= give_up:
            return Decision("failed", reason=f"{what}; gave up after {delivery.attempts} tries")
    delay = backoff_s(settings, delivery.attempts)
    return Decision("pending", now + timedelta(seconds=delay), reason=what)


def update_lease(*, session: Session, delivery_id: str, lease_s: float) -> bool:
    """Take the delivery for ``lease_s`` if it is pending and nobody holds it."""
    now = utcnow()
    result = session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.status == "pending",
            or_(WebhookDelivery.leased_until.is_(None), WebhookDelivery.leased_until < now),
        )
        .values(leased_until=now + timedelta(seconds=lease_s))
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


def check_url(url: object, settings: Settings) -> None:
    """Refuse (422 naming ``webhook``) a URL this service will not call; None passes."""
    if url is None:
        return
    if len(str(url)) > 2000:
        raise ssrf.WebhookRefused("webhook: URLs are limited to 2,000 characters", field="webhook")
    ssrf.check(
        str(url), allow_http=settings.webhook_allow_http, allowed=settings.webhook_allowed_cidrs
    )
