"""The JSON API contract on both databases: verdicts, authentication, one error shape, health endpoints."""

from __future__ import annotations

import json
import time

import pytest
from sqlalchemy import text

from moderation.comment import Label
from moderation.errors import ConfigError
from moderation.learning.site_learning import site_examples
from moderation.store.labels import record_label
from moderation.store.schema import CommentRecord
from moderation.store.sites import create_site, revoke_site, site_for_key
from moderation.web.api import parse_timestamp, signature
from moderation.web.app import create_app

SPAM = {"content": "Cheap viagra cialis online, no prescription http://pills-shop.xyz", "author_name": "cheap pills"}
HAM = {
    "content": "Thanks, this fixed my build. The PATH variable was what I missed.",
    "author_name": "Dana",
    "author_email": "dana@example.org",
    "user_ip": "198.51.100.7",
    "user_agent": "Mozilla/5.0",
}


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def assert_error(response, status: int, code: str | None = None) -> dict:
    """The response has `status` and the one JSON error shape (and `code`, when given)."""
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert body["ok"] is False and set(body["error"]) == {"code", "message"}
    assert body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code
    return body


def test_without_model_everything_is_held_and_readyz_says_why(client, site_key):
    """With no model loaded a check still answers: held, score null, and /readyz explains it is not ready."""
    response = client.post("/api/v1/comments/check", json=HAM, headers=auth(site_key))
    body = response.get_json()
    assert response.status_code == 200 and body["ok"] is True
    assert (body["decision"], body["score"], body["model_version"]) == ("hold", None, None)
    assert "no model loaded" in body["reasons"][0]
    ready = client.get("/readyz")
    assert_error(ready, 503, "not_ready")
    assert "no model loaded" in ready.get_json()["error"]["message"]
    assert ready.get_json()["checks"]["database"] == "ok"


def test_model_verdicts_carry_score_reasons_and_version(client, site_key, model_dir):
    """With a model, obvious spam is not approved, ham is approved, each with score, reasons and version."""
    spam = client.post("/api/v1/comments/check", json=SPAM, headers=auth(site_key)).get_json()
    ham = client.post("/api/v1/comments/check", json=HAM, headers=auth(site_key)).get_json()
    assert spam["decision"] in ("spam", "discard") and spam["score"] > ham["score"]
    assert ham["decision"] == "approve"
    assert spam["model_version"] == ham["model_version"] == "tiny-1"
    assert any("spam probability" in reason for reason in spam["reasons"])
    assert client.get("/readyz").get_json() == {"ok": True, "checks": {"model": "tiny-1", "database": "ok"}}


def test_status_and_feedback_round_trip(client, site_key):
    """A site reads a comment's status, reports it as spam, and sees the new status and label history."""
    checked = client.post("/api/v1/comments/check", json=HAM, headers=auth(site_key)).get_json()
    url = f"/api/v1/comments/{checked['id']}"
    assert client.get(url, headers=auth(site_key)).get_json()["status"] == "hold"
    reported = client.post(f"{url}/feedback", json={"label": "spam"}, headers=auth(site_key))
    assert reported.get_json() == {"ok": True, "id": checked["id"], "status": "spam"}
    shown = client.get(url, headers=auth(site_key)).get_json()
    assert shown["status"] == "spam" and shown["decision"] == "hold"
    assert [lab["label"] for lab in shown["labels"]] == ["spam"]
    assert_error(client.post(f"{url}/feedback", json={"label": "maybe"}, headers=auth(site_key)), 400)


def test_another_sites_comment_is_not_found(app, client, site_key):
    """A site cannot read or label another site's comment, nor probe ids beyond BIGINT."""
    checked = client.post("/api/v1/comments/check", json=HAM, headers=auth(site_key)).get_json()
    with app.extensions["moderation"].sessions() as session:
        _, other = create_site(session, "Other blog")
    assert_error(client.get(f"/api/v1/comments/{checked['id']}", headers=auth(other)), 404, "not_found")
    assert_error(
        client.post(f"/api/v1/comments/{checked['id']}/feedback", json={"label": "ham"}, headers=auth(other)), 404
    )
    assert_error(client.get(f"/api/v1/comments/{2**70}", headers=auth(site_key)), 404)


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 401, "unauthorized"),
        ({"Authorization": "Basic abc"}, 401, "unauthorized"),
        ({"Authorization": "Bearer wrongwrongwr"}, 403, "invalid_key"),
    ],
)
def test_bad_credentials_are_refused(client, headers, status, code):
    """Missing or malformed credentials answer 401, an unknown key 403, in the error shape."""
    assert_error(client.post("/api/v1/comments/check", json=HAM, headers=headers), status, code)


def test_revoked_key_is_refused(app, client, site_key):
    """Once revoked a key no longer works."""
    with app.extensions["moderation"].sessions() as session:
        revoke_site(session, site_for_key(session, site_key).id)
    assert_error(client.post("/api/v1/comments/check", json=HAM, headers=auth(site_key)), 403)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "content"),
        ({"content": "   "}, "content"),
        ({"content": 5}, "content: expected a string"),
        ({"content": "hi", "author_name": ["x"]}, "author_name"),
        ({"content": "hi", "user_ip": "999.1.1.1"}, "user_ip"),
        ({"content": "hi", "author_name": "x" * 501}, "at most 500"),
        ({"content": "hi", "rendered_at": "yesterday"}, "rendered_at"),
        ({"content": "hi", "submitted_at": 12}, "between 2000 and 2100"),
        ({"content": "hi", "submitted_at": True}, "submitted_at"),
        ({"content": "hi", "is_test": "yes"}, "is_test"),
        ({"content": "\x00 "}, "visible character"),
        ({"content": "hi", "rendered_at": "1700000000"}, "rendered_at"),
        ({"content": "hi", "rendered_at": "2026-01-01"}, "rendered_at"),
        ({"content": "hi", "page_title": 5}, "page_title: expected a string"),
        ({"content": "hi", "page_title": "x" * 501}, "page_title"),
        ({"content": "hi", "page_tags": "plants, gardening"}, "page_tags: expected a list"),
        ({"content": "hi", "page_tags": ["ok", 7]}, "page_tags: expected strings"),
        ({"content": "hi", "page_tags": ["t"] * 51}, "at most 50 strings"),
        ([1, 2], "JSON object"),
        ("text", "JSON object"),
    ],
)
def test_invalid_input_is_400_naming_the_field(client, site_key, body, message):
    """Wrong types, bounds and missing content answer 400 and say which field is wrong."""
    response = client.post("/api/v1/comments/check", json=body, headers=auth(site_key))
    assert message in assert_error(response, 400, "bad_request")["error"]["message"]


def test_malformed_json_wrong_type_and_oversize(app, client, site_key):
    """Broken JSON → 400, a form post → 415, a body over MAX_CONTENT_LENGTH → 413."""
    headers = {**auth(site_key), "Content-Type": "application/json"}
    assert_error(client.post("/api/v1/comments/check", data="{not json", headers=headers), 400)
    assert_error(client.post("/api/v1/comments/check", data={"content": "hi"}, headers=auth(site_key)), 415)
    big = json.dumps({"content": "x" * (app.config["MAX_CONTENT_LENGTH"] + 10)})
    assert_error(client.post("/api/v1/comments/check", data=big, headers=headers), 413, "payload_too_large")


def test_unknown_paths_and_methods_use_the_error_shape(client):
    """Routing errors on the API answer JSON: 404 for a path, 405 with Allow for a method."""
    assert_error(client.get("/api/v1/nothing"), 404)
    response = client.get("/api/v1/comments/check")
    assert_error(response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"]


def test_timestamps_in_iso_or_epoch_feed_the_too_fast_rule(client, site_key):
    """Render and submit times may be ISO-8601 or epoch seconds; a one-second submit is held and says so."""
    now = time.time()
    body = {**HAM, "rendered_at": now - 1, "submitted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))}
    answer = client.post("/api/v1/comments/check", json=body, headers=auth(site_key)).get_json()
    assert answer["decision"] == "hold"
    assert any("after the form was shown" in reason for reason in answer["reasons"])


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-01-31T12:00:00Z", "2026-01-31T12:00:00+00:00"),
        ("2026-01-31t13:00:00+01:00", "2026-01-31T12:00:00+00:00"),
        ("2026-01-31 12:00:00", "2026-01-31T12:00:00+00:00"),
        ("2016-12-31T23:59:60Z", "2016-12-31T23:59:59+00:00"),
        (1769860800, "2026-01-31T12:00:00+00:00"),
        ("", None),
        (None, None),
    ],
)
def test_timestamps_accept_rfc3339_and_epoch(value, expected):
    """RFC 3339 date-times (any case, any offset, naive as UTC, leap seconds) and epoch numbers become UTC."""
    parsed = parse_timestamp("rendered_at", value)
    assert (parsed.isoformat() if parsed else None) == expected


def test_nul_characters_are_dropped(app, client, site_key):
    """NUL characters, which PostgreSQL cannot store, are removed rather than refused."""
    answer = client.post("/api/v1/comments/check", json={"content": "a\x00b"}, headers=auth(site_key)).get_json()
    with app.extensions["moderation"].sessions() as session:
        assert session.get(CommentRecord, answer["id"]).content == "ab"


def test_page_title_and_tags_are_stored_and_read_back_for_the_sites_model(app, client, site_key):
    """The page's title and tags are stored with the comment as its page context, and the site's own model
    reads them back with its labels; a comment sent without them stores none."""
    page = {"page_title": "How to repot a fiddle leaf fig", "page_tags": ["houseplants", " ", "gardening"]}
    with_page = client.post("/api/v1/comments/check", json={**HAM, **page}, headers=auth(site_key)).get_json()
    without = client.post("/api/v1/comments/check", json=HAM, headers=auth(site_key)).get_json()
    with app.extensions["moderation"].sessions() as session:
        record = session.get(CommentRecord, with_page["id"])
        assert record.extra["page_context"] == ["How to repot a fiddle leaf fig", "houseplants", "gardening"]
        assert "page_context" not in session.get(CommentRecord, without["id"]).extra
        record_label(session, record, Label.SPAM, source="moderator", actor="test")
        (stored,) = site_examples(session, record.site_id, limit=10)
    assert stored.comment.page_context == ("How to repot a fiddle leaf fig", "houseplants", "gardening")


def test_honeypot_discards(client, site_key, model_dir):
    """A filled honeypot field discards the comment whatever the model thinks."""
    answer = client.post("/api/v1/comments/check", json={**HAM, "honeypot": "x"}, headers=auth(site_key)).get_json()
    assert answer["decision"] == "discard" and "honeypot" in answer["reasons"][0]


def test_signed_body_authenticates_without_a_key(app, client, site_key):
    """An HMAC-SHA256 signature over timestamp and body identifies the site; bad or stale ones are refused."""
    with app.extensions["moderation"].sessions() as session:
        site = site_for_key(session, site_key)
    body = json.dumps(HAM).encode()
    stamp = str(int(time.time()))

    def post(sig: str, ts: str = stamp):
        headers = {
            "Content-Type": "application/json",
            "X-Moderation-Site": str(site.id),
            "X-Moderation-Timestamp": ts,
            "X-Moderation-Signature": sig,
        }
        return client.post("/api/v1/comments/check", data=body, headers=headers)

    assert post(signature(site.signing_secret, stamp, body)).status_code == 200
    assert_error(post(signature("wrong", stamp, body)), 403, "invalid_signature")
    old = str(int(time.time()) - 3600)
    assert_error(post(signature(site.signing_secret, old, body), old), 401, "stale_signature")


def test_rate_limit_answers_429(db_url, tmp_path):
    """Past MODERATION_RATELIMIT_SITE a site gets 429 in the error shape, with Retry-After."""
    application = create_app({"DATABASE_URL": db_url, "MODEL_DIR": str(tmp_path), "RATELIMIT_SITE": "2/minute"})
    with application.extensions["moderation"].sessions() as session:
        _, key = create_site(session, "Blog")
    client = application.test_client()
    for _ in range(2):
        assert client.post("/api/v1/comments/check", json=HAM, headers=auth(key)).status_code == 200
    limited = client.post("/api/v1/comments/check", json=HAM, headers=auth(key))
    assert_error(limited, 429, "rate_limited")
    assert 0 < int(limited.headers["Retry-After"]) <= 60
    application.extensions["moderation"].engine.dispose()


def test_database_failure_answers_503_with_retry_after(app, client, site_key):
    """When the comment cannot be stored the answer is 503 with Retry-After, never a verdict."""
    with app.extensions["moderation"].engine.begin() as connection:
        connection.execute(text("DROP TABLE audit_log"))
    response = client.post("/api/v1/comments/check", json=HAM, headers=auth(site_key))
    assert_error(response, 503, "unavailable")
    assert int(response.headers["Retry-After"]) > 0


def test_production_refuses_the_default_secret_key(db_url, tmp_path):
    """MODERATION_ENV=production with the built-in secret key refuses to start with a clear error."""
    with pytest.raises(ConfigError, match="MODERATION_SECRET_KEY"):
        create_app({"ENV": "production", "DATABASE_URL": db_url, "MODEL_DIR": str(tmp_path)})


def test_health_metrics_and_openapi(client, site_key):
    """/healthz answers, /metrics counts checks, and the OpenAPI document describes the check endpoint."""
    assert client.get("/healthz").get_json() == {"ok": True}
    client.post("/api/v1/comments/check", json=HAM, headers=auth(site_key))
    exposition = client.get("/metrics").get_data(as_text=True)
    assert "moderation_decisions_total" in exposition and "moderation_http_request_seconds" in exposition
    spec = client.get("/api/v1/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    assert (
        "content"
        in spec["paths"]["/api/v1/comments/check"]["post"]["requestBody"]["content"]["application/json"]["schema"][
            "required"
        ]
    )


def test_metrics_token_restricts_metrics(db_url, tmp_path):
    """With MODERATION_METRICS_TOKEN, /metrics needs it as a Bearer credential (401 in the error shape otherwise)."""
    application = create_app({"DATABASE_URL": db_url, "MODEL_DIR": str(tmp_path), "METRICS_TOKEN": "scrape-me-7"})
    client = application.test_client()
    try:
        assert_error(client.get("/metrics"), 401, "unauthorized")
        assert_error(client.get("/metrics", headers={"Authorization": "Bearer wrong"}), 401)
        allowed = client.get("/metrics", headers={"Authorization": "Bearer scrape-me-7"})
        assert allowed.status_code == 200 and "moderation_http_request" in allowed.get_data(as_text=True)
        assert client.get("/healthz").status_code == 200  # health stays public
    finally:
        application.extensions["moderation"].engine.dispose()


def test_root_redirects_to_the_review_queue(client):
    """Opening the server's address leads a person to the review queue."""
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/review/")


def test_metrics_are_created_once_when_a_workers_threads_start_together():
    """Sixteen threads answering a fresh worker's first requests at once all count them: none gets the registry's
    "Duplicated timeseries" (a 500 on the first requests of a threaded worker before the lock)."""
    import subprocess
    import sys

    race = """
import threading, time
import prometheus_client
from moderation.web import metrics

real_init = prometheus_client.Counter.__init__
def slow_init(self, *args, **kwargs):  # widen the window between "not created yet" and "registered"
    time.sleep(0.05)
    real_init(self, *args, **kwargs)
prometheus_client.Counter.__init__ = slow_init
barrier, errors = threading.Barrier(16), []
def first_request():
    barrier.wait()
    try:
        metrics.observe("api.check", "POST", 200, 0.01)
    except Exception as exc:
        errors.append(repr(exc))
threads = [threading.Thread(target=first_request) for _ in range(16)]
[t.start() for t in threads]
[t.join() for t in threads]
print(len(errors), errors[:1])
"""
    result = subprocess.run([sys.executable, "-c", race], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "0 []", result.stdout + result.stderr
