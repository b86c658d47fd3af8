"""Akismet clients against a real server over TCP: the PyPI `akismet` client (sync and async) and plain HTTP.

The server is the real app behind werkzeug's threaded server on a free loopback port. The PyPI client
always calls https://rest.akismet.com; the documented way to point it elsewhere is an injected httpx
client whose transport rewrites that address. The tests run the code block of docs/akismet.md that
builds it, so the documentation cannot drift from what works.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import akismet
import httpx
import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from moderation.store.schema import AuditEvent, CommentRecord, LabelRecord
from moderation.store.sites import create_site

DOCS = Path(__file__).resolve().parent.parent / "docs" / "akismet.md"
BLOG = "https://blog.example"
# The fields Akismet requires in every comment-check besides the key.
REQUIRED = {"blog": BLOG, "user_ip": "192.0.2.1"}
# The plain-HTTP tests exercise parsing and routing, not the database: SQLite is enough for them.
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
HAM_TEXT = "Thanks, this fixed my build. The trick with the PATH variable was what I missed."
BLATANT_SPAM = "Cheap viagra cialis online, no prescription http://pills-shop.xyz casino bonus http://casino-win.top"
THANKS = "Thanks for making the web a better place."
# Site thresholds that make the policy's answer certain whatever the tiny model scores (0 < p < 1).
ALWAYS_APPROVE = {"hold": 1.0, "spam": 1.0, "discard": 1.0}
ALWAYS_DISCARD = {"hold": 0.0, "spam": 0.0, "discard": 0.0}


@functools.cache
def documented_setup() -> dict[str, Any]:
    """The first Python block of docs/akismet.md, executed: the documented way to point the client at us."""
    text = DOCS.read_text(encoding="utf-8")
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(compile(code, str(DOCS), "exec"), namespace)
    return namespace


def sync_client(base: str, key: str) -> akismet.SyncClient:
    http = documented_setup()["moderation_http_client"](base)
    return akismet.SyncClient(config=akismet.Config(key=key, url=BLOG), http_client=http)


def async_http(base: str) -> httpx.AsyncClient:
    return documented_setup()["moderation_async_http_client"](base)


@pytest.fixture
def server(app) -> Iterator[str]:
    """The app served over TCP on a free loopback port; yields its base URL."""
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join(5)


@pytest.fixture
def with_model(model_dir):
    """The app loads the tiny model (version "tiny-1") from its model folder instead of holding everything."""
    return model_dir


def _new_site(app, name: str, **settings) -> str:
    with app.extensions["moderation"].sessions() as session:
        _, key = create_site(session, name, f"https://{name}.example", settings=settings)
    return key


def _records(app, **where) -> list[CommentRecord]:
    with app.extensions["moderation"].sessions() as session:
        query = select(CommentRecord).filter_by(**where).order_by(CommentRecord.id)
        return list(session.scalars(query))


def _labels(app, comment_id: int) -> list[tuple[str, str, str]]:
    with app.extensions["moderation"].sessions() as session:
        query = select(LabelRecord).where(LabelRecord.comment_id == comment_id).order_by(LabelRecord.id)
        return [(label.label, label.source, label.actor) for label in session.scalars(query)]


# --- The PyPI `akismet` client -------------------------------------------------------------------------


def test_sync_client_verifies_good_and_bad_keys(server, site_key):
    """validated_client accepts our key; a wrong key verifies False and makes validated_client raise."""
    assert sync_client(server, site_key).verify_key() is True
    assert sync_client(server, "wrongwrong12").verify_key() is False
    http = documented_setup()["moderation_http_client"](server)
    with pytest.raises(akismet.APIKeyError):
        akismet.SyncClient.validated_client(config=akismet.Config(key="wrongwrong12", url=BLOG), http_client=http)


def test_sync_client_check_answers_ham_spam_and_discard(app, server, site_key, with_model):
    """The model's score under each site's thresholds: approve → HAM, spam → SPAM, discard → DISCARD."""
    approving = sync_client(server, _new_site(app, "approving", **ALWAYS_APPROVE))
    blocking = sync_client(server, _new_site(app, "blocking", blocklist=["zucchini"], discard=1.0))
    discarding = sync_client(server, _new_site(app, "discarding", **ALWAYS_DISCARD))

    ham = approving.comment_check("203.0.113.1", comment_content=HAM_TEXT, comment_author="Dana")
    assert ham == akismet.CheckResponse.HAM
    spam = blocking.comment_check("203.0.113.2", comment_content="I grow zucchini every summer.", comment_author="Lee")
    assert spam == akismet.CheckResponse.SPAM
    discard = discarding.comment_check("203.0.113.3", comment_content=BLATANT_SPAM, comment_author="cheap pills")
    assert discard == akismet.CheckResponse.DISCARD

    stored = _records(app, source="akismet")
    assert [(r.content, r.decision, r.status) for r in stored] == [
        (HAM_TEXT, "approve", "approve"),
        ("I grow zucchini every summer.", "spam", "spam"),
        (BLATANT_SPAM, "discard", "discard"),
    ]
    assert all(r.model_version == "tiny-1" and r.extra["blog"] == BLOG for r in stored)


def test_sync_client_hold_is_spam_without_the_discard_tip(app, server, site_key):
    """With no model everything is held: Akismet hears "spam", the comment waits in our review queue."""
    client = sync_client(server, site_key)
    assert client.comment_check("203.0.113.4", comment_content=HAM_TEXT) == akismet.CheckResponse.SPAM
    (record,) = _records(app, source="akismet")
    assert (record.decision, record.status) == ("hold", "hold")


def test_sync_client_test_triggers_and_is_test(app, server, site_key, with_model):
    """akismet-guaranteed-spam and viagra-test-123 → SPAM; user_role=administrator → HAM; is_test is stored."""
    client = sync_client(server, site_key)
    spam = client.comment_check("203.0.113.5", comment_content=HAM_TEXT, comment_author="akismet-guaranteed-spam")
    assert spam == akismet.CheckResponse.SPAM
    older = client.comment_check("203.0.113.5", comment_content="Hello again", comment_author="viagra-test-123")
    assert older == akismet.CheckResponse.SPAM
    ham = client.comment_check("203.0.113.6", comment_content=BLATANT_SPAM, user_role="administrator", is_test=True)
    assert ham == akismet.CheckResponse.HAM
    first, older, second = _records(app, source="akismet")
    assert (first.decision, first.status, first.is_test) == ("spam", "spam", False)
    assert older.status == "spam" and "viagra-test-123" in older.reasons[0]
    assert first.rules == ["akismet_test_trigger"]
    assert (second.decision, second.status, second.is_test) == ("approve", "approve", True)
    assert "administrator" in second.reasons[0]


def test_sync_client_submissions_become_labels(app, server, site_key, with_model):
    """submit-spam finds the checked comment by text and author; submit-ham of an unseen comment stores it."""
    client = sync_client(server, _new_site(app, "approving", **ALWAYS_APPROVE))
    missed = "Lovely photos of the coast, we walked the same path last summer."
    verdict = client.comment_check("203.0.113.7", comment_content=missed, comment_author="Marie")
    assert verdict == akismet.CheckResponse.HAM
    assert client.submit_spam("203.0.113.7", comment_content=missed, comment_author="Marie") is True
    assert client.submit_ham("203.0.113.8", comment_content="Never checked here.", comment_author="Sam") is True

    checked, unseen = _records(app, source="akismet")
    assert (checked.content, checked.status) == (missed, "spam")
    assert _labels(app, checked.id) == [("spam", "akismet", f"site:{checked.site_id}")]
    assert (unseen.content, unseen.status, unseen.extra["submitted_as"]) == ("Never checked here.", "approve", "ham")
    assert _labels(app, unseen.id) == [("ham", "akismet", f"site:{unseen.site_id}")]


def test_sync_client_usage_limit_and_key_sites_count_our_checks(app, server, site_key, with_model):
    """usage-limit and key-sites (JSON and CSV, key via the /k/<key>/ prefix) report this month's checks."""
    client = sync_client(server, site_key)
    client.comment_check("203.0.113.9", comment_content=HAM_TEXT, comment_author="Dana", user_role="administrator")
    client.comment_check("203.0.113.10", comment_content=BLATANT_SPAM, comment_author="akismet-guaranteed-spam")
    client.submit_spam("203.0.113.9", comment_content=HAM_TEXT, comment_author="Dana")

    assert client.usage_limit() == {"limit": "none", "usage": 2, "percentage": "0.00", "throttled": False}

    # The PyPI client sends no key with key-sites; it travels in the path instead.
    keyed = sync_client(f"{server}/k/{site_key}", site_key)
    month = datetime.now(UTC).strftime("%Y-%m")
    row = {
        "site": "blog.example",
        "api_calls": "2",
        "spam": "1",
        "ham": "1",
        "missed_spam": "1",
        "false_positives": "0",
        "is_revoked": False,
    }
    assert keyed.key_sites() == {month: [row], "limit": 500, "offset": 0, "total": 1}
    old = keyed.key_sites(month="2001-01", limit=10)
    assert isinstance(old, dict) and old["2001-01"][0]["api_calls"] == "0"
    filtered = keyed.key_sites(url_filter="elsewhere.example")
    assert isinstance(filtered, dict) and filtered["total"] == 0
    assert keyed.key_sites(offset=1) == {month: [], "limit": 500, "offset": 1, "total": 1}
    csv_report = keyed.key_sites(result_format="csv", order="spam", limit=10)
    assert isinstance(csv_report, str)
    assert csv_report.splitlines() == [
        f"Active sites for {site_key} during {month} (limit:10, offset: 0, total: 1)",
        "Site,Total API Calls,Spam,Ham,Missed Spam,False Positives,Is Revoked",
        "blog.example,2,1,1,1,0,false",
    ]


def test_sync_client_with_a_bad_key_raises_api_key_error(server):
    """Every operation answered "invalid" becomes the client's APIKeyError."""
    client = sync_client(server, "wrongwrong12")
    with pytest.raises(akismet.APIKeyError):
        client.comment_check("203.0.113.11", comment_content=HAM_TEXT)
    with pytest.raises(akismet.APIKeyError):
        client.submit_spam("203.0.113.11", comment_content=HAM_TEXT)


def test_async_client_round_trip(app, server, site_key, with_model):
    """AsyncClient: validated construction, check ham/discard, submit, usage-limit, key-sites JSON and CSV."""

    key = _new_site(app, "discarding", **ALWAYS_DISCARD)

    async def scenario() -> None:
        config = akismet.Config(key=key, url=BLOG)
        client = await akismet.AsyncClient.validated_client(config=config, http_client=async_http(server))
        ham = await client.comment_check("198.51.100.1", comment_content=HAM_TEXT, user_role="administrator")
        assert ham == akismet.CheckResponse.HAM
        blatant = await client.comment_check("198.51.100.2", comment_content=BLATANT_SPAM)
        assert blatant == akismet.CheckResponse.DISCARD
        assert await client.submit_ham("198.51.100.2", comment_content=BLATANT_SPAM) is True
        assert (await client.usage_limit())["usage"] == 2
        keyed = akismet.AsyncClient(config=config, http_client=async_http(f"{server}/k/{key}"))
        report = await keyed.key_sites()
        assert isinstance(report, dict) and report["total"] == 1
        assert report[datetime.now(UTC).strftime("%Y-%m")][0]["false_positives"] == "1"
        csv_report = await keyed.key_sites(result_format="csv")
        assert isinstance(csv_report, str) and csv_report.splitlines()[2] == "discarding.example,2,1,1,0,1,false"
        with pytest.raises(akismet.APIKeyError):
            await akismet.AsyncClient.validated_client(
                config=akismet.Config(key="wrongwrong12", url=BLOG), http_client=async_http(server)
            )

    # A fresh thread: Playwright's sync API may hold a running loop in this worker's main thread.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, scenario()).result()
    _ham, discarded = _records(app, source="akismet")
    assert discarded.status == "approve" and _labels(app, discarded.id)[0][:2] == ("ham", "akismet")


# --- Plain HTTP: key styles, answers, charsets ------------------------------------------------------------


def _post(server: str, path: str, fields: dict[str, str], **kwargs) -> httpx.Response:
    return httpx.post(
        server + path,
        content=urlencode(fields).encode(),
        timeout=10,
        headers={"Content-Type": "application/x-www-form-urlencoded", **kwargs.pop("headers", {})},
        **kwargs,
    )


@sqlite_only
def test_host_subdomain_carries_the_key(app, server, site_key):
    """A key as the Host's first label (`<key>.akismet.example.org`) works for verify-key and comment-check."""
    host = {"Host": f"{site_key}.akismet.example.org"}
    assert _post(server, "/1.1/verify-key", {"blog": BLOG}, headers=host).text == "valid"
    answer = _post(
        server, "/1.1/comment-check", {"blog": BLOG, "user_ip": "192.0.2.1", "comment_content": "Hi"}, headers=host
    )
    assert answer.status_code == 200 and answer.text == "true"  # no model: held
    assert answer.headers["X-akismet-guid"] == str(_records(app)[0].id)


@sqlite_only
def test_verify_key_checks_key_before_api_key(server, site_key):
    """WordPress verifying a new key also sends its stored one as api_key; `key` is the one verified."""
    new_key_first = {"key": site_key, "api_key": "oldoldoldold", "blog": BLOG}
    assert _post(server, "/1.1/verify-key", new_key_first).text == "valid"
    unknown_new_key = {"key": "newnewnewnew", "api_key": site_key, "blog": BLOG}
    assert _post(server, "/1.1/verify-key", unknown_new_key).text == "invalid"


@sqlite_only
def test_path_prefix_carries_the_key(server, site_key):
    """`/k/<key>/1.1/...` and `/k/<key>/1.2/...` serve clients that can neither set a body key nor a host."""
    assert _post(server, f"/k/{site_key}/1.1/verify-key", {"blog": BLOG}).text == "valid"
    usage = httpx.get(f"{server}/k/{site_key}/1.2/usage-limit", timeout=10)
    assert usage.json()["usage"] == 0
    checked = _post(server, f"/k/{site_key}/1.1/comment-check", {**REQUIRED, "comment_content": "Hi"})
    assert (checked.text, checked.headers["X-akismet-guid"].isdigit()) == ("true", True)
    assert _post(server, "/k/wrongwrong12/1.1/verify-key", {"blog": BLOG}).text == "invalid"


@sqlite_only
def test_bad_or_missing_key_is_200_invalid_with_debug_help(server):
    """As Akismet does: HTTP 200, body "invalid", the reason in X-akismet-debug-help."""
    for path, fields in [
        ("/1.1/verify-key", {"key": "wrongwrong12", "blog": BLOG}),
        ("/1.1/comment-check", {"api_key": "wrongwrong12", "comment_content": "Hi"}),
        ("/1.1/submit-ham", {"comment_content": "Hi"}),
        ("/1.2/usage-limit", {"api_key": "wrongwrong12"}),
        ("/1.2/key-sites", {}),
    ]:
        answer = _post(server, path, fields)
        assert (answer.status_code, answer.text) == (200, "invalid"), path
        assert answer.headers["X-akismet-debug-help"], path


@sqlite_only
def test_normal_answers_carry_no_debug_or_alert_headers(app, server, site_key, with_model):
    """Some clients fail on any debug or alert header, so ordinary answers have none."""
    discarding = _new_site(app, "discarding", **ALWAYS_DISCARD)
    answers = [
        _post(server, "/1.1/verify-key", {"key": site_key, "blog": BLOG}),
        _post(server, "/1.1/comment-check", {**REQUIRED, "api_key": site_key, "comment_content": HAM_TEXT,
                                             "user_role": "administrator"}),
        _post(server, "/1.1/comment-check", {**REQUIRED, "api_key": discarding, "comment_content": BLATANT_SPAM}),
        _post(server, "/1.1/submit-spam", {"api_key": site_key, "comment_content": HAM_TEXT}),
        httpx.get(f"{server}/1.1/test", timeout=10),
    ]
    assert [a.text for a in answers] == ["valid", "false", "true", THANKS, "connected"]
    assert answers[1].headers.get("X-akismet-pro-tip") is None
    assert answers[2].headers["X-akismet-pro-tip"] == "discard"
    for answer in answers:
        assert answer.headers["Content-Type"].startswith("text/plain")
        assert not [name for name in answer.headers if name.lower().startswith(("x-akismet-debug", "x-akismet-alert"))]


@pytest.mark.parametrize(
    ("charset", "author", "content"),
    [
        ("ISO-8859-1", "Renée Müller", "Très bien expliqué, merci !"),
        ("Windows-1252", "Zoë", "“Quoted” and 5 € — fine"),
        ("Shift_JIS", "山田太郎", "とても分かりやすい記事でした。"),
    ],
)
def test_non_utf8_blog_charset_is_stored_as_sent(app, server, site_key, charset, author, content):
    """A WordPress site in a legacy charset sends bytes in it; we store the text it meant."""
    body = urlencode(
        {
            "api_key": site_key,
            "blog": BLOG,
            "blog_charset": charset,
            "comment_author": author,
            "comment_content": content,
            "user_ip": "192.0.2.2",
        },
        encoding=charset,
    ).encode("ascii")
    answer = httpx.post(
        f"{server}/1.1/comment-check",
        content=body,
        timeout=10,
        headers={"Content-Type": f"application/x-www-form-urlencoded; charset={charset}"},
    )
    assert answer.text == "true"
    (record,) = _records(app)
    assert (record.author_name, record.content, record.extra["blog_charset"]) == (author, content, charset)


@sqlite_only
def test_wordpress_style_request_keeps_documented_fields_and_drops_the_rest(app, server, site_key):
    """POST_*, HTTP_* and nonces are ignored; comment_context[n] and the honeypot are understood."""
    fields = {
        "api_key": site_key,
        "blog": BLOG,
        "user_ip": "192.0.2.3",
        "user_agent": "Mozilla/5.0",
        "referrer": f"{BLOG}/post",
        "permalink": f"{BLOG}/post",
        "comment_type": "comment",
        "comment_author": "Bot",
        "comment_content": "Nice post",
        "blog_lang": "en_US",
        "blog_charset": "UTF-8",
        "comment_context[0]": "travel",
        "comment_context[1]": "photos",
        "honeypot_field_name": "ak_hp_textarea",
        "POST_ak_hp_textarea": "I am a bot",
        "POST_ak_js": "1700000000000",
        "HTTP_ACCEPT": "text/html",
        "akismet_comment_nonce": "passed",
        "_wpnonce": "abc",
        "callback": f"{BLOG}/wp-json/akismet/v1/webhook",
    }
    answer = _post(server, "/1.1/comment-check", fields)
    assert (answer.text, answer.headers["X-akismet-pro-tip"]) == ("true", "discard")  # honeypot filled
    (record,) = _records(app)
    assert record.extra == {
        "blog": BLOG,
        "blog_lang": "en_US",
        "blog_charset": "UTF-8",
        "honeypot_field_name": "ak_hp_textarea",
        "page_context": ["travel", "photos"],
        "honeypot_filled": True,
    }
    assert (record.comment_type, record.language, record.user_agent) == ("comment", "en_US", "Mozilla/5.0")


def test_submit_by_guid_labels_that_comment(app, server, site_key):
    """The guid we answered with finds the comment even when the text sent back differs."""
    check = _post(server, "/1.1/comment-check", {**REQUIRED, "api_key": site_key, "comment_content": "Original text"})
    guid = check.headers["X-akismet-guid"]
    answer = _post(server, "/1.1/submit-ham", {"api_key": site_key, "guid": guid, "comment_content": "Edited"})
    assert answer.text == THANKS
    (record,) = _records(app)
    assert str(record.id) == guid and record.status == "approve"
    assert _labels(app, record.id) == [("ham", "akismet", f"site:{record.site_id}")]


@sqlite_only
def test_guid_of_another_site_is_not_followed(app, server, site_key):
    """A guid belonging to a different site is ignored: the submission is stored for the caller's own site."""
    other_key = _new_site(app, "other")
    guid = _post(server, "/1.1/comment-check", {**REQUIRED, "api_key": other_key, "comment_content": "Theirs"}).headers[
        "X-akismet-guid"
    ]
    _post(server, "/1.1/submit-spam", {"api_key": site_key, "guid": guid, "comment_content": "Mine"})
    theirs, mine = _records(app)
    assert (theirs.status, _labels(app, theirs.id)) == ("hold", [])
    assert (mine.content, mine.status) == ("Mine", "spam")


@sqlite_only
def test_test_trigger_is_audited(app, server, site_key):
    """A forced answer leaves an audit event naming the trigger."""
    _post(
        server,
        "/1.1/comment-check",
        {**REQUIRED, "api_key": site_key, "comment_author": "akismet-guaranteed-spam", "comment_content": "x"},
    )
    with app.extensions["moderation"].sessions() as session:
        actions = list(session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))
    assert actions[-2:] == ["comment.check", "akismet.test_trigger"]


@sqlite_only
def test_comment_check_spends_the_site_budget(db_url, tmp_path):
    """RATELIMIT_SITE applies to comment-check too, however the key arrives: the third check in the minute gets 429."""
    from moderation.web.app import create_app

    app = create_app({"TESTING": True, "DATABASE_URL": db_url, "MODEL_DIR": str(tmp_path / "models"),
                      "INSTANCE_PATH": str(tmp_path), "RATELIMIT_SITE": "2/minute"})
    key = _new_site(app, "limited")
    client = app.test_client()
    codes = [client.post("/1.1/comment-check", data={**REQUIRED, "api_key": key, "comment_content": "hi"}).status_code
             for _ in range(3)]
    codes.append(client.post(f"/k/{key}/1.1/comment-check", data={**REQUIRED, "comment_content": "hi"}).status_code)
    assert codes == [200, 200, 429, 429]
    assert client.post("/1.1/verify-key", data={"key": key, "blog": BLOG}).data == b"valid"  # writes nothing
    app.extensions["moderation"].engine.dispose()


@sqlite_only
def test_held_akismet_comment_waits_in_the_review_queue(app, server, site_key):
    """A comment checked through Akismet shows up in the moderators' queue like any other."""
    from review_helpers import add_user, login

    answer = _post(server, "/1.1/comment-check", {**REQUIRED, "api_key": site_key, "comment_author": "Marie",
                                                  "comment_content": "Is the ferry running in winter?"})
    guid = answer.headers["X-akismet-guid"]
    add_user(app.extensions["moderation"].sessions, "alice", "admin")
    moderator = app.test_client()
    assert login(moderator).status_code == 302
    html = moderator.get("/review/").get_data(as_text=True)
    assert f'id="c-{guid}"' in html and "Is the ferry running in winter?" in html


# --- What WordPress and Akismet's other clients need besides the four calls ------------------------------


@sqlite_only
def test_new_site_key_is_hex_and_every_settings_page_call_accepts_it(server, site_key):
    """A new key is 12 hex characters; verify-key, get-subscription and get-stats answer 200 for it."""
    assert len(site_key) == 12 and all(c in "0123456789abcdef" for c in site_key)
    fields = {"key": site_key, "blog": BLOG}
    answers = [_post(server, f"/1.1/{call}", fields) for call in ("verify-key", "get-subscription", "get-stats")]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert answers[0].text == "valid"
    assert answers[1].json()["status"] == "active" and answers[1].json()["limit_reached"] is False
    assert answers[2].json() == {"spam": 0, "ham": 0, "missed_spam": 0, "false_positives": 0, "accuracy": 100.0}
    assert _post(server, "/1.1/token", {"api_key": site_key}).text.strip()
    for call in ("get-subscription", "get-stats", "token"):
        refused = _post(server, f"/1.1/{call}", {"key": "wrongwrong12", "api_key": "wrongwrong12", "blog": BLOG})
        assert (refused.text, bool(refused.headers["X-akismet-debug-help"])) == ("invalid", True), call


@sqlite_only
def test_get_stats_counts_the_sites_checks_and_corrections(app, server, site_key):
    """get-stats: what we blocked and let through, corrections either way, accuracy, for 6-months and all."""
    approving = _new_site(app, "approving", allowlist=["Dana"])
    checks = [
        {"comment_author": "Dana", "comment_content": "First, approved"},
        {"comment_author": "Dana", "comment_content": "Second, approved, then reported as spam"},
        {"comment_author": "Lee", "comment_content": "Held: no model here"},
        {"comment_author": "Lee", "comment_content": "Held, then approved by the site"},
    ]
    for fields in checks:
        _post(server, "/1.1/comment-check", {**REQUIRED, "api_key": approving, **fields})
    _post(server, "/1.1/submit-spam", {**REQUIRED, "api_key": approving, **checks[1]})
    _post(server, "/1.1/submit-ham", {**REQUIRED, "api_key": approving, **checks[3]})
    expected = {"spam": 2, "ham": 2, "missed_spam": 1, "false_positives": 1, "accuracy": 50.0}
    for window in ("6-months", "all"):
        assert _post(server, "/1.1/get-stats", {"key": approving, "blog": BLOG, "from": window}).json() == expected
    other = _post(server, "/1.1/get-stats", {"key": site_key, "blog": BLOG, "from": "all"}).json()
    assert other["spam"] == other["ham"] == 0


@sqlite_only
def test_comment_check_without_blog_or_user_ip_is_refused_as_akismet_does(app, server, site_key):
    """A check missing a required field is answered `Missing required field: <name>.` and stores nothing."""
    for absent in ("blog", "user_ip"):
        fields = {"api_key": site_key, "comment_content": "Hi", **REQUIRED, absent: ""}
        answer = _post(server, "/1.1/comment-check", fields)
        assert (answer.status_code, answer.text) == (200, f"Missing required field: {absent}.")
        assert answer.headers["X-akismet-debug-help"] == f"Missing required field: {absent}."
    assert _records(app) == []


@sqlite_only
def test_decision_header_names_each_of_our_four_decisions(app, server):
    """X-Moderation-Decision says approve, hold, spam or discard beside Akismet's true/false."""
    key = _new_site(app, "lists", allowlist=["Dana"], blocklist=["zucchini"])
    cases = {
        "approve": {"comment_author": "Dana", "comment_content": "Lovely"},
        "hold": {"comment_author": "Lee", "comment_content": "No model: held"},
        "spam": {"comment_author": "Lee", "comment_content": "zucchini deals"},
        "discard": {"comment_author": "Bot", "comment_content": "x", "POST_ak_hp_textarea": "filled by a bot"},
    }
    for decision, fields in cases.items():
        answer = _post(server, "/1.1/comment-check", {**REQUIRED, "api_key": key, **fields})
        assert answer.headers["X-Moderation-Decision"] == decision
        assert answer.text == ("false" if decision == "approve" else "true")
        assert answer.headers.get("X-akismet-pro-tip") == ("discard" if decision == "discard" else None)


@sqlite_only
def test_recheck_is_answered_from_the_moderators_decision_without_a_second_row(app, server, site_key):
    """A recheck of a held comment a moderator then approved answers false; an edited text is checked afresh."""
    from moderation.web.review.actions import decide

    fields = {**REQUIRED, "api_key": site_key, "comment_author": "Marie", "comment_content": "Is the ferry running?"}
    first = _post(server, "/1.1/comment-check", fields)
    assert (first.text, first.headers["X-Moderation-Decision"]) == ("true", "hold")
    recheck = {**fields, "recheck_reason": "recheck_queue"}
    again = _post(server, "/1.1/comment-check", recheck)
    assert (again.text, again.headers["X-akismet-guid"]) == ("true", first.headers["X-akismet-guid"])
    with app.extensions["moderation"].sessions() as session:
        decide(session, [int(first.headers["X-akismet-guid"])], "approve", actor="alice")
    approved = _post(server, "/1.1/comment-check", recheck)
    assert (approved.text, approved.headers["X-Moderation-Decision"]) == ("false", "approve")
    assert len(_records(app)) == 1
    edited = _post(server, "/1.1/comment-check", {**recheck, "comment_content": "Is the ferry running in May?"})
    assert edited.headers["X-akismet-guid"] != first.headers["X-akismet-guid"] and len(_records(app)) == 2
