"""Site callbacks: HMAC signatures with timestamps, delivery to a real HTTP receiver, retries with backoff, and the
destinations a callback may not reach (the receiver runs on loopback, so most tests allow private addresses)."""

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from webhook_receiver import Receiver

from moderation.cli import main
from moderation.errors import DestinationRefused
from moderation.store.db import make_sessionmaker
from moderation.store.schema import CommentRecord, WebhookDelivery
from moderation.store.sites import create_site
from moderation.web import destinations, webhooks

SECRET = "s3cret-for-tests"


@pytest.fixture
def receiver():
    """A real HTTP server on loopback recording what it receives."""
    server = Receiver().start()
    yield server
    server.stop()


@pytest.fixture
def sessions(db_engine):
    """A sessionmaker on the migrated test database."""
    return make_sessionmaker(db_engine)


def _comment(session, callback_url: str) -> CommentRecord:
    site, _ = create_site(session, "Blog", "https://blog.example")
    site.callback_url = callback_url
    site.callback_secret = SECRET
    comment = CommentRecord(
        site_id=site.id, content="hello", content_hash="h", decision="hold", status="approve", score=0.5
    )
    session.add(comment)
    session.commit()
    return comment


def test_signature_round_trip():
    """A signature verifies for the same body and time, and not for a changed body, secret or old time."""
    body = webhooks.encode_body({"b": 1, "a": "é"})
    now = 1_800_000_000
    headers = webhooks.signed_headers(SECRET, body, delivery_id=7, event="comment.status", now=now)
    ts, sig = headers[webhooks.TIMESTAMP_HEADER], headers[webhooks.SIGNATURE_HEADER]
    assert sig.startswith("sha256=") and len(sig) == 7 + 64
    assert webhooks.verify_signature(SECRET, ts, sig, body, now=now + 10)
    assert not webhooks.verify_signature(SECRET, ts, sig, body + b" ", now=now)
    assert not webhooks.verify_signature("other", ts, sig, body, now=now)
    assert not webhooks.verify_signature(SECRET, ts, sig, body, now=now + webhooks.TOLERANCE_SECONDS + 1)
    assert not webhooks.verify_signature(SECRET, "yesterday", sig, body, now=now)


def test_no_callback_url_queues_nothing(db_session):
    """A site without a callback URL gets no deliveries."""
    comment = _comment(db_session, "")
    assert webhooks.enqueue(db_session, comment, actor="alice") is None


def test_delivery_reaches_receiver_signed(db_session, sessions, receiver):
    """A queued callback arrives at a real HTTP endpoint with a valid signature and is logged as delivered."""
    comment = _comment(db_session, receiver.url)
    delivery = webhooks.enqueue(db_session, comment, actor="alice")
    db_session.commit()
    report = webhooks.deliver_due(sessions, allow_private=True)
    assert (report.delivered, report.retrying, report.failed) == (1, 0, 0)
    [got] = receiver.requests
    assert webhooks.verify_signature(
        SECRET, got.headers["x-moderation-timestamp"], got.headers["x-moderation-signature"], got.body
    )
    payload = json.loads(got.body)
    assert payload["comment_id"] == comment.id and payload["status"] == "approve" and payload["decided_by"] == "alice"
    assert got.headers["x-moderation-delivery"] == str(delivery.id)
    db_session.expire_all()
    stored = db_session.get(WebhookDelivery, delivery.id)
    assert stored.status == "delivered" and stored.attempts == 1 and stored.response_code == 200


def test_failure_retries_with_backoff_then_gives_up(db_session, sessions, receiver):
    """A 500 schedules a retry after the first backoff step; after MAX_ATTEMPTS the delivery is failed."""
    receiver.statuses = [500] * webhooks.MAX_ATTEMPTS
    comment = _comment(db_session, receiver.url)
    delivery = webhooks.enqueue(db_session, comment, actor="alice")
    db_session.commit()
    start = datetime.now(UTC)
    assert webhooks.deliver_due(sessions, allow_private=True).retrying == 1
    db_session.expire_all()
    stored = db_session.get(WebhookDelivery, delivery.id)
    wait = stored.next_attempt_at.replace(tzinfo=UTC) - start
    first_step = webhooks.BACKOFF_SECONDS[0]
    assert timedelta(seconds=first_step - 1) < wait < timedelta(seconds=first_step + 5)
    assert "HTTP 500" in stored.last_error
    assert webhooks.deliver_due(sessions, allow_private=True).attempted == 0  # not due yet
    moment = start
    for _ in range(webhooks.MAX_ATTEMPTS - 1):
        moment += timedelta(days=1)
        webhooks.deliver_due(sessions, now=moment, allow_private=True)
    db_session.expire_all()
    stored = db_session.get(WebhookDelivery, delivery.id)
    assert stored.status == "failed" and stored.attempts == webhooks.MAX_ATTEMPTS
    assert len(receiver.requests) == webhooks.MAX_ATTEMPTS


def test_unreachable_site_is_an_error_not_a_crash(db_session, sessions):
    """A refused connection is logged on the delivery and retried later."""
    comment = _comment(db_session, "http://127.0.0.1:9/nothing-listens-here")
    webhooks.enqueue(db_session, comment, actor="alice")
    db_session.commit()
    assert webhooks.deliver_due(sessions, allow_private=True).retrying == 1
    stored = db_session.query(WebhookDelivery).one()
    db_session.refresh(stored)
    assert "ConnectError" in stored.last_error


def test_a_claimed_delivery_is_sent_once(db_session, sessions, receiver):
    """Two delivery passes at once send each delivery exactly once (the claim is a conditional update)."""
    comment = _comment(db_session, receiver.url)
    webhooks.enqueue(db_session, comment, actor="alice")
    db_session.commit()
    first = webhooks.deliver_due(sessions, allow_private=True)
    second = webhooks.deliver_due(sessions, allow_private=True)
    assert first.delivered + second.delivered == 1
    assert len(receiver.requests) == 1


def test_worker_thread_delivers_when_woken(db_session, sessions, receiver):
    """The background worker sends a delivery soon after being woken, without blocking the caller."""
    comment = _comment(db_session, receiver.url)
    webhooks.enqueue(db_session, comment, actor="alice")
    db_session.commit()
    worker = webhooks.DeliveryWorker(sessions, poll_seconds=30, allow_private=True)
    started = time.monotonic()
    worker.wake()
    assert time.monotonic() - started < 0.5
    try:
        assert receiver.arrived.wait(10)
    finally:
        worker.stop()


def test_cli_deliver(db_url, db_session, receiver, monkeypatch):
    """`moderation webhooks deliver` sends what is due and says how it went."""
    comment = _comment(db_session, receiver.url)
    webhooks.enqueue(db_session, comment, actor="alice")
    db_session.commit()
    monkeypatch.setenv("MODERATION_DATABASE_URL", db_url)
    monkeypatch.setenv("MODERATION_CALLBACK_ALLOW_PRIVATE", "true")
    result = CliRunner().invoke(main, ["webhooks", "deliver"])
    assert result.exit_code == 0, result.output
    assert "delivered 1, retrying 0, failed 0" in result.output
    assert len(receiver.requests) == 1


# --- Destinations: never inside our network unless allowed ---------------------------------------------

INTERNAL_URLS = [
    "http://169.254.169.254/latest/meta-data/",  # cloud metadata (link-local)
    "http://[::1]:8080/hook",
    "http://0.0.0.0/hook",
    "http://2130706433/hook",  # 127.0.0.1 as one decimal number
    "http://127.1/hook",  # 127.0.0.1, short form
    "http://0x7f.0.0.1/hook",  # 127.0.0.1 in hexadecimal
    "http://localhost:5432/",  # a name that resolves inside
    "http://10.0.0.8/hook",
    "http://192.168.1.1/hook",
    "http://100.64.0.1/hook",  # shared address space (carrier NAT)
    "http://[fe80::1]/hook",
    "http://[fd00::1]/hook",
    "http://224.0.0.1/hook",  # multicast
    "http://[::ffff:127.0.0.1]/hook",  # IPv4-mapped loopback
    "http://[2002:7f00:1::]/hook",  # 6to4 wrapping of 127.0.0.1
    "http://[64:ff9b::a9fe:a9fe]/hook",  # NAT64 wrapping of 169.254.169.254
]


@pytest.mark.parametrize("url", INTERNAL_URLS)
def test_internal_destinations_are_refused_after_resolving(url):
    """Loopback, private, link-local, unspecified, multicast and shared addresses, in any spelling, are refused."""
    with pytest.raises(DestinationRefused, match="not a public one"):
        destinations.check(url, allow_private=False)
    destinations.check(url, allow_private=True)  # the development setting lets it through


def test_credentials_in_a_callback_url_are_refused_even_when_private_is_allowed():
    """A URL carrying user:password is refused: the secret would sit in every delivery log and audit event."""
    with pytest.raises(DestinationRefused, match="user name or password"):
        destinations.check("https://admin:hunter2@8.8.8.8/hook", allow_private=True)


def test_public_addresses_pass_and_a_delivery_connects_to_the_address_it_checked():
    """A public address passes; `pin` rewrites the URL to the checked address and keeps the Host and TLS name."""
    assert [str(a) for a in destinations.check("https://8.8.8.8/hook", allow_private=False)] == ["8.8.8.8"]

    def resolver(host, port, **_):  # a name whose answer is public (no network in tests)
        assert (host, port) == ("hooks.example", 8443)
        return [(2, 1, 6, "", ("93.184.215.14", port))]

    pinned = destinations.pin("https://hooks.example:8443/cb?x=1", allow_private=False, resolve=resolver)
    assert pinned.url == "https://93.184.215.14:8443/cb?x=1"
    assert pinned.headers == {"Host": "hooks.example:8443"} and pinned.extensions == {"sni_hostname": "hooks.example"}


def test_delivery_to_an_internal_address_is_refused_when_sent(db_session, sessions, receiver):
    """A stored callback URL that reaches inside (saved before this check, or a name that now points inside) is
    not sent to: the receiver on loopback gets nothing and the delivery says why."""
    comment = _comment(db_session, receiver.url)
    webhooks.enqueue(db_session, comment, actor="alice")
    db_session.commit()
    assert webhooks.deliver_due(sessions).retrying == 1
    assert receiver.requests == []
    stored = db_session.query(WebhookDelivery).one()
    db_session.refresh(stored)
    assert stored.last_error.startswith("not sent:") and "loopback" in stored.last_error


def test_the_delivery_log_keeps_the_status_not_the_answer(db_session, sessions, receiver):
    """A failed delivery records "HTTP 500", never the body the destination answered with."""
    receiver.statuses = [500]
    receiver.body = b"internal admin page: db password hunter2"
    comment = _comment(db_session, receiver.url)
    webhooks.enqueue(db_session, comment, actor="alice")
    db_session.commit()
    webhooks.deliver_due(sessions, allow_private=True)
    stored = db_session.query(WebhookDelivery).one()
    db_session.refresh(stored)
    assert stored.last_error == "HTTP 500" and stored.response_code == 500


def test_a_queued_delivery_follows_a_changed_or_cleared_url(db_session, sessions, receiver):
    """A delivery queued before the site's callback URL changed goes to the new URL; once cleared, it is cancelled."""
    from moderation.store.schema import Site

    other = Receiver().start()
    try:
        comment = _comment(db_session, receiver.url)
        first = webhooks.enqueue(db_session, comment, actor="alice")
        db_session.commit()
        site = db_session.get(Site, comment.site_id)
        site.callback_url = other.url
        db_session.commit()
        assert webhooks.deliver_due(sessions, allow_private=True).delivered == 1
        assert receiver.requests == [] and len(other.requests) == 1
        db_session.refresh(first)
        assert first.url == other.url
        second = webhooks.enqueue(db_session, comment, actor="alice")
        db_session.commit()
        site.callback_url = ""
        db_session.commit()
        report = webhooks.deliver_due(sessions, allow_private=True)
        assert (report.delivered, report.cancelled) == (0, 1) and len(other.requests) == 1
        db_session.refresh(second)
        assert second.status == "cancelled"
    finally:
        other.stop()
