"""Signed callbacks to a site when a moderator decides on a comment, retried with backoff.

A decision only *queues* a delivery (a `WebhookDelivery` row, committed with the decision); sending
happens elsewhere so a slow or dead site never blocks the moderator: a background `DeliveryWorker`
thread in each server process, woken right after a decision, and `moderation webhooks deliver` for
cron. Several processes or hosts may run both at once: a delivery is *claimed* with a conditional
UPDATE (bumping its next attempt time past the HTTP timeout), so exactly one of them sends it.

The request a site receives:

    POST <callback_url>
    Content-Type: application/json
    X-Moderation-Event: comment.status
    X-Moderation-Delivery: <delivery id>
    X-Moderation-Timestamp: <unix seconds>
    X-Moderation-Signature: sha256=<hex HMAC-SHA256(callback_secret, "<timestamp>." + body)>

    {"event": "comment.status", "comment_id": 17, "status": "approve", ...}

The site recomputes the HMAC over the exact body bytes, compares in constant time and refuses
timestamps older than a few minutes (replays). `verify_signature` is that check, for receivers in
Python and for our tests.

Each attempt goes to the site's callback URL as it is *then* (a changed URL is followed; a cleared one,
or a revoked site, cancels the delivery), only to a public address (`destinations`), without following
redirects. The delivery log keeps the status code of an answer, never its body: moderators read that log.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from moderation.errors import DestinationRefused
from moderation.store.schema import CommentRecord, Site, WebhookDelivery
from moderation.web import destinations

log = logging.getLogger(__name__)

EVENT_HEADER = "X-Moderation-Event"
DELIVERY_HEADER = "X-Moderation-Delivery"
TIMESTAMP_HEADER = "X-Moderation-Timestamp"
SIGNATURE_HEADER = "X-Moderation-Signature"

# Wait after the n-th failed attempt: quick retries for a blip, then spread over about a day for an
# outage (the sum is ~24 h), the shape GitHub and Stripe use for their webhooks.
BACKOFF_SECONDS = (10, 30, 120, 600, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600)
MAX_ATTEMPTS = len(BACKOFF_SECONDS) + 1
TIMEOUT_SECONDS = 5.0
# A claimed delivery is invisible to other workers this long; longer than any one HTTP attempt.
CLAIM_SECONDS = 60
TOLERANCE_SECONDS = 300
WORKER_POLL_SECONDS = 5.0


def _now() -> datetime:
    return datetime.now(UTC)


def encode_body(payload: Mapping[str, Any]) -> bytes:
    """The exact bytes sent (and signed) for `payload`: compact, sorted JSON."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header value for `body` sent at `timestamp`: "sha256=" + hex HMAC."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def signed_headers(
    secret: str, body: bytes, *, delivery_id: int, event: str, now: float | None = None
) -> dict[str, str]:
    """The headers of one delivery attempt, signature included."""
    timestamp = int(time.time() if now is None else now)
    return {
        "Content-Type": "application/json",
        "User-Agent": "moderation-webhooks/1",
        EVENT_HEADER: event,
        DELIVERY_HEADER: str(delivery_id),
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, timestamp, body),
    }


def verify_signature(
    secret: str,
    timestamp: str,
    signature: str,
    body: bytes,
    *,
    now: float | None = None,
    tolerance: int = TOLERANCE_SECONDS,
) -> bool:
    """True when `signature` is ours for `body` at `timestamp` and the timestamp is recent enough."""
    try:
        sent = int(timestamp)
    except (TypeError, ValueError):
        return False
    current = time.time() if now is None else now
    if abs(current - sent) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, sent, body), signature)


def payload_for(comment: CommentRecord, *, actor: str, event: str = "comment.status") -> dict[str, Any]:
    """What a site is told about a comment's new status."""
    return {
        "event": event,
        "comment_id": comment.id,
        "site_id": comment.site_id,
        "status": comment.status,
        "decision": comment.decision,
        "permalink": comment.permalink,
        "decided_by": actor,
        "decided_at": _now().isoformat(timespec="seconds"),
    }


def enqueue(session: Session, comment: CommentRecord, *, actor: str) -> WebhookDelivery | None:
    """Queue a callback about `comment`'s status when its site has a callback URL (caller commits)."""
    site = session.get(Site, comment.site_id)
    if site is None or not site.callback_url or site.revoked_at is not None:
        return None
    delivery = WebhookDelivery(
        site_id=site.id,
        comment_id=comment.id,
        url=site.callback_url,
        payload=payload_for(comment, actor=actor),
        status="pending",
        attempts=0,
        next_attempt_at=_now(),
    )
    session.add(delivery)
    return delivery


def retry(session: Session, delivery_id: int) -> WebhookDelivery | None:
    """Make a failed or pending delivery due now (a moderator pressed "retry"); caller commits."""
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.status == "delivered":
        return delivery
    delivery.status = "pending"
    delivery.next_attempt_at = _now()
    if delivery.attempts >= MAX_ATTEMPTS:
        delivery.attempts = MAX_ATTEMPTS - 1  # one more try
    return delivery


@dataclass
class DeliveryReport:
    """What one pass over the due deliveries did."""

    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    cancelled: int = 0  # the site's callback URL was cleared, or the site revoked, before it was sent

    @property
    def attempted(self) -> int:
        return self.delivered + self.retrying + self.failed


def _claim(session: Session, delivery_id: int, now: datetime) -> bool:
    """Take a due delivery for this process: True when no other worker got it first."""
    result = session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.status == "pending",
            WebhookDelivery.next_attempt_at <= now,
        )
        .values(next_attempt_at=now + timedelta(seconds=CLAIM_SECONDS), attempts=WebhookDelivery.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return getattr(result, "rowcount", 0) == 1


def _send(
    client: httpx.Client, delivery: WebhookDelivery, secret: str, *, allow_private: bool
) -> tuple[int | None, str]:
    """POST one attempt to `delivery.url`; returns (HTTP status or None, error text or "")."""
    body = encode_body(delivery.payload)
    headers = signed_headers(secret, body, delivery_id=delivery.id, event=str(delivery.payload.get("event", "")))
    try:
        target = destinations.pin(delivery.url, allow_private=allow_private)
        response = client.post(
            target.url, content=body, headers={**headers, **target.headers}, extensions=target.extensions
        )
    except DestinationRefused as exc:
        return None, f"not sent: {exc}"[:500]
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}"[:500]
    if 200 <= response.status_code < 300:
        return response.status_code, ""
    # The status only: the answer's body may be an internal page, and every moderator reads this log.
    return response.status_code, f"HTTP {response.status_code}"


def _current_url(site: Site | None) -> str:
    """Where the site wants callbacks now: "" when it has no callback URL any more or was revoked."""
    if site is None or site.revoked_at is not None:
        return ""
    return site.callback_url or ""


def deliver_due(
    sessions: sessionmaker[Session],
    *,
    limit: int = 50,
    client: httpx.Client | None = None,
    now: datetime | None = None,
    allow_private: bool = False,
) -> DeliveryReport:
    """Send every pending delivery whose time has come (at most `limit`); safe to run in parallel.

    `allow_private` lets callbacks reach loopback and private addresses (MODERATION_CALLBACK_ALLOW_PRIVATE).
    """
    report = DeliveryReport()
    owns_client = client is None
    http = client or httpx.Client(timeout=TIMEOUT_SECONDS, follow_redirects=False)
    try:
        with sessions() as session:
            moment = now or _now()
            due = session.scalars(
                select(WebhookDelivery.id)
                .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= moment)
                .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
                .limit(limit)
            ).all()
            for delivery_id in due:
                if not _claim(session, delivery_id, moment):
                    continue
                delivery = session.get(WebhookDelivery, delivery_id, populate_existing=True)
                if delivery is None:
                    continue
                site = session.get(Site, delivery.site_id, populate_existing=True)
                url = _current_url(site)
                if site is None or not url:
                    delivery.status = "cancelled"
                    delivery.last_error = "not sent: the site no longer has a callback URL (or was revoked)"
                    report.cancelled += 1
                    session.commit()
                    continue
                delivery.url = url  # follow a changed URL; the log shows where it really went
                code, error = _send(http, delivery, site.callback_secret, allow_private=allow_private)
                finished = _now()
                delivery.response_code = code
                if not error:
                    delivery.status = "delivered"
                    delivery.delivered_at = finished
                    delivery.last_error = ""
                    report.delivered += 1
                elif delivery.attempts >= MAX_ATTEMPTS:
                    delivery.status = "failed"
                    delivery.last_error = error
                    report.failed += 1
                else:
                    delivery.last_error = error
                    delivery.next_attempt_at = finished + timedelta(seconds=BACKOFF_SECONDS[delivery.attempts - 1])
                    report.retrying += 1
                session.commit()
    finally:
        if owns_client:
            http.close()
    return report


class DeliveryWorker:
    """A daemon thread that sends due deliveries: woken after each decision, polling in between."""

    def __init__(
        self, sessions: sessionmaker[Session], *, poll_seconds: float = WORKER_POLL_SECONDS, allow_private: bool = False
    ) -> None:
        self.sessions = sessions
        self.poll_seconds = poll_seconds
        self.allow_private = allow_private
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the thread unless it already runs."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="webhook-deliveries", daemon=True)
            self._thread.start()

    def wake(self) -> None:
        """Deliver now rather than at the next poll (starts the thread on first use)."""
        self.start()
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the thread to finish its current pass and wait for it."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        with httpx.Client(timeout=TIMEOUT_SECONDS, follow_redirects=False) as client:
            while not self._stop.is_set():
                self._wake.clear()
                try:
                    deliver_due(self.sessions, client=client, allow_private=self.allow_private)
                except Exception:  # a database hiccup must not kill the thread; the next pass retries
                    log.exception("webhook delivery pass failed")
                self._wake.wait(self.poll_seconds)
