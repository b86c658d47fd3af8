"""Every HTTP endpoint fed hostile input: JSON bodies, Akismet forms in any charset, huge and nested bodies.

The property is the same everywhere: the answer is never a 5xx (a 500 means bad input crashed a
view; a 503 would tell the site to retry input that can never succeed), JSON API errors keep the one
error shape, and Akismet endpoints answer one of their documented words. SQLite and PostgreSQL both
run: PostgreSQL refuses NUL characters and invalid Unicode that SQLite stores.
"""

from __future__ import annotations

import json
import time
from urllib.parse import quote_from_bytes

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from review_helpers import PASSWORD, csrf_from, login
from werkzeug.datastructures import MultiDict

from moderation.store.sites import create_site
from moderation.web.api import FIELD_LIMITS

# Hypothesis reuses the function-scoped app and key across examples on purpose: one database per test.
fuzz = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
HOSTILE = ["<a href=", "&#x0;", "\x00", "\ud800", "\udfff", "\u202e", "\ufeff", "\ufdfa", "а", "'; DROP TABLE --", "%s"]
any_char = st.one_of(st.characters(), st.integers(0xD800, 0xDFFF).map(chr))
hostile_text = st.lists(st.one_of(st.sampled_from(HOSTILE), st.text(any_char, max_size=10)), max_size=12).map("".join)
json_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), hostile_text, st.text(any_char, max_size=3000)
)
json_value = st.recursive(json_scalar, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner))
NAMES = [*FIELD_LIMITS, "rendered_at", "submitted_at", "is_test", "label", "reporter"]
json_body = st.dictionaries(st.sampled_from(NAMES) | st.text(max_size=5), json_value, max_size=8)


# Parsing and routing tests need no second database; the fuzzers and NUL tests run on both.
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def assert_json_answer(response) -> None:
    """Not a 5xx; an error keeps the one error shape."""
    assert response.status_code < 500, response.get_data(as_text=True)[:500]
    body = response.get_json()
    if response.status_code >= 400:
        assert body["ok"] is False and set(body["error"]) == {"code", "message"}


def _raw_json(value) -> bytes:
    # json.dumps escapes lone surrogates as \ud800, exactly what a hostile client can send.
    return json.dumps(value).encode("ascii")


@fuzz
@given(body=json_body)
def test_check_answers_any_json_object_without_5xx(client, site_key, body):
    """POST /comments/check with any JSON object (any types, hostile strings) is a 200 or a 4xx in the error shape."""
    response = client.post(
        "/api/v1/comments/check", data=_raw_json(body), headers=auth(site_key), content_type="application/json"
    )
    assert_json_answer(response)


@fuzz
@given(body=json_value, comment_id=st.integers(-5, 2**70))
def test_feedback_and_status_answer_any_input_without_5xx(client, site_key, body, comment_id):
    """Feedback with any JSON value and status with any id answer 2xx/4xx in the error shape."""
    posted = client.post(
        f"/api/v1/comments/{comment_id}/feedback",
        data=_raw_json(body),
        headers=auth(site_key),
        content_type="application/json",
    )
    assert_json_answer(posted)
    assert_json_answer(client.get(f"/api/v1/comments/{comment_id}", headers=auth(site_key)))


@sqlite_only
@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"[" * 30_000 + b"]" * 30_000, 400),
        (b'{"content": "x", "a": ' + b"[" * 20_000 + b"]" * 20_000 + b"}", 400),
        (b'{"a":' * 10_000 + b"1" + b"}" * 10_000, 400),
        (b'{"content": "lone \\ud800 surrogate"}', 400),
        (b'{"content": "ok", "author_name": "\\udfff"}', 400),
        (b'{"content": "\xff\xfe not utf-8"}', 400),
        (b'{"content": "x"' + b" " * 70_000 + b"}", 413),
        (b"", 400),
        (b"null", 400),
        (b'"just a string"', 400),
        (b'{"content": "NaN number", "rendered_at": NaN}', 400),
        (b'{"content": "huge", "rendered_at": 1e400}', 400),
        (b'{"content": "\\u0000"}', 400),
        ('{"content": "UTF-16 is JSON too"}'.encode("utf-16"), 200),
    ],
    ids=[
        "nested-arrays", "nested-inside-object", "nested-objects", "lone-high-surrogate", "lone-low-surrogate",
        "invalid-utf8", "over-max-content-length", "empty", "null", "string", "nan", "infinite", "nul", "utf16",
    ],
)  # fmt: skip
def test_hostile_json_bodies_get_4xx_not_5xx(client, site_key, raw, status):
    """Deeply nested, surrogate-laden, non-UTF-8, oversized and non-object bodies are refused with the right 4xx."""
    response = client.post("/api/v1/comments/check", data=raw, headers=auth(site_key), content_type="application/json")
    assert_json_answer(response)
    assert response.status_code == status, response.get_data(as_text=True)[:300]


def test_nul_in_feedback_reporter_is_not_a_database_error(client, site_key):
    """Feedback naming a reporter with a NUL character on a real comment is a 4xx or 2xx, never a 5xx."""
    checked = client.post("/api/v1/comments/check", json={"content": "Nice post"}, headers=auth(site_key)).get_json()
    for reporter in ("\x00", "a\x00b"):
        response = client.post(
            f"/api/v1/comments/{checked['id']}/feedback",
            json={"label": "spam", "reporter": reporter},
            headers=auth(site_key),
        )
        assert_json_answer(response)


@sqlite_only
@pytest.mark.parametrize(("site", "stamp"), [("1", "²"), ("²", "³"), ("¹", "1"), ("1" * 19, "1"), ("1", "9" * 13)])
def test_signed_request_headers_that_are_not_ascii_integers_are_401(client, site, stamp):
    """X-Moderation-Site/-Timestamp of superscript digits or too many digits are a 401, not a 500."""
    headers = {"X-Moderation-Site": site, "X-Moderation-Timestamp": stamp, "X-Moderation-Signature": "sha256=00"}
    response = client.post("/api/v1/comments/check", json={"content": "x"}, headers=headers)
    assert response.status_code == 401
    assert_json_answer(response)


@sqlite_only
def test_wrong_content_type_and_charset_labels(client, site_key):
    """A JSON body under a wrong or bogus content type is 415, never parsed and never a 500."""
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/json; charset=bogus-9"):
        response = client.post(
            "/api/v1/comments/check", data=b'{"content": "x"}', headers=auth(site_key), content_type=content_type
        )
        assert_json_answer(response)


# --- Akismet form endpoints ---------------------------------------------------------------------------

AKISMET_PATHS = [
    "/1.1/verify-key",
    "/1.1/comment-check",
    "/1.1/submit-spam",
    "/1.1/submit-ham",
    "/1.2/usage-limit",
    "/1.2/key-sites",
    "/1.1/test",
    "/1.1/get-subscription",
    "/1.1/get-stats",
]
AKISMET_WORDS = {
    "valid", "invalid", "true", "false", "connected", "Thanks for making the web a better place.",
    "Missing required field: blog.", "Missing required field: user_ip.",
}  # fmt: skip
AKISMET_PARAMS = [
    "blog", "user_ip", "user_agent", "referrer", "permalink", "comment_type", "content_type", "comment_author",
    "comment_author_email", "comment_author_url", "comment_content", "comment_date_gmt",
    "comment_post_modified_gmt", "blog_lang", "blog_charset", "user_role", "is_test", "recheck_reason",
    "honeypot_field_name", "hidden_honeypot_field", "comment_context[]", "comment_context[0]",
    "comment_context[99999999999999999999]", "guid", "month", "limit", "offset", "order", "filter", "format",
    "POST_hp", "HTTP_X", "_wpnonce",
]  # fmt: skip
# Charset labels a form may claim, including codecs that decode to lone surrogates (unicode_escape,
# utf-7), that raise plain UnicodeError (punycode, idna), multi-byte ones and nonsense.
CHARSETS = [
    "utf-8", "UTF-8", "iso-8859-1", "windows-1252", "shift_jis", "euc-kr", "gb18030", "koi8-r", "utf-16",
    "utf-16-le", "utf-32", "utf-7", "unicode_escape", "raw_unicode_escape", "punycode", "idna", "base64", "rot13",
    "hex", "bogus-charset", "", "\x00", "utf-8\"; x=y",
]  # fmt: skip
ENCODINGS = ["utf-8", "latin-1", "cp1252", "shift_jis", "utf-16", "utf-7", "unicode_escape", "gb18030"]


def _encode(text: str, encoding: str) -> bytes:
    return text.encode(encoding, errors="surrogatepass" if encoding.startswith("utf-") else "replace")


@st.composite
def akismet_forms(draw, key: str) -> tuple[str, bytes, str]:
    """(path, url-encoded body bytes, content type) for a hostile Akismet request carrying a valid key."""
    charset = draw(st.sampled_from(CHARSETS))
    encoding = draw(st.sampled_from(ENCODINGS))
    pairs = [(b"api_key", key.encode())] if draw(st.booleans()) else []
    fields = draw(st.lists(st.tuples(st.sampled_from(AKISMET_PARAMS) | st.text(max_size=6), hostile_text), max_size=10))
    if draw(st.integers(0, 3)):  # mostly with the required fields, so the fuzzing reaches the check itself
        fields[:0] = [("blog", "https://blog.example"), ("user_ip", "203.0.113.7")]
    if draw(st.booleans()):
        pairs.append((b"blog_charset", charset.encode("utf-8", "surrogatepass")))
    if draw(st.booleans()):
        fields.append(("comment_author", "akismet-guaranteed-spam"))
    for name, value in fields:
        pairs.append((_encode(name, encoding), _encode(value, encoding)))
    raw_tail = draw(st.binary(max_size=40))  # bytes outside any encoding, half-escapes like "%e2%8"
    body = b"&".join(quote_from_bytes(n).encode() + b"=" + quote_from_bytes(v).encode() for n, v in pairs)
    body += b"&" + raw_tail
    content_type = "application/x-www-form-urlencoded"
    if draw(st.booleans()):
        content_type += f"; charset={charset}"
    return draw(st.sampled_from(AKISMET_PATHS)), body, content_type


def assert_akismet_answer(response) -> None:
    """Not a 5xx; a 200 is one of Akismet's words or a JSON/CSV report."""
    assert response.status_code < 500, response.get_data(as_text=True)[:500]
    if response.status_code == 200 and response.mimetype == "text/plain":
        assert response.get_data(as_text=True) in AKISMET_WORDS


@pytest.fixture
def akismet_site(app):
    """A site whose Akismet key is plaintext in the test; yields (client, key)."""
    with app.extensions["moderation"].sessions() as session:
        _, key = create_site(session, "Blog", "https://blog.example")
    return app.test_client(), key


@fuzz
@given(data=st.data())
def test_akismet_endpoints_answer_any_form_in_any_charset(akismet_site, data):
    """Every Akismet endpoint answers hypothesis-generated forms in any declared charset without a 5xx."""
    client, key = akismet_site
    path, body, content_type = data.draw(akismet_forms(key))
    prefix = data.draw(st.sampled_from(["", f"/k/{key}", "/k/%ff%fe", "/k/" + "x" * 300]))
    response = client.post(prefix + path, data=body, content_type=content_type)
    assert_akismet_answer(response)


@sqlite_only
@fuzz
@given(raw=st.binary(max_size=3000), host=st.sampled_from(["localhost", "abcdefghijkl.example.org", "[::1]:80", ""]))
def test_akismet_endpoints_answer_random_bytes(akismet_site, raw, host):
    """Random bytes as a form body, query string or Host header never produce a 5xx."""
    client, _ = akismet_site
    for path in ("/1.1/comment-check", "/1.1/submit-spam", "/1.2/key-sites"):
        assert_akismet_answer(
            client.post(path, data=raw, content_type="application/x-www-form-urlencoded", headers={"Host": host})
        )
    assert_akismet_answer(client.get("/1.2/key-sites", environ_overrides={"QUERY_STRING": raw.decode("latin-1")}))


def test_akismet_surrogate_producing_charsets_are_stored(akismet_site):
    """blog_charset=unicode_escape or utf-7 decoding to lone surrogates is stored (as U+FFFD), not a 500."""
    client, key = akismet_site
    for charset, content in (("unicode_escape", "%5Cud800x"), ("utf-7", "%2B2AA-x"), ("punycode", "%ff%ff")):
        body = (f"api_key={key}&blog=https://blog.example&user_ip=203.0.113.7&blog_charset={charset}"
                f"&comment_content={content}&comment_author=%5Cudfff")
        response = client.post("/1.1/comment-check", data=body, content_type="application/x-www-form-urlencoded")
        # punycode may garble the key or the blog too, making that request an Akismet "invalid" or a missing
        # field: still not a 5xx.
        garbled = ("invalid", "Missing required field: blog.", "Missing required field: user_ip.")
        expected = ("true", "false", *garbled) if charset == "punycode" else ("true", "false")
        assert response.status_code == 200 and response.get_data(as_text=True) in expected, charset


@pytest.mark.parametrize("guid", ["²", "9" * 25, "1" * 5000, "١٢", "-1", ""])
def test_akismet_submit_with_odd_guid_is_thanked(akismet_site, guid):
    """submit-spam with a guid that is not a storable id (superscripts, past BIGINT, 5000 digits) is still thanked."""
    client, key = akismet_site
    response = client.post("/1.1/submit-spam", data={"api_key": key, "comment_content": "x", "guid": guid})
    assert response.status_code == 200 and response.get_data(as_text=True).startswith("Thanks")


@sqlite_only
def test_akismet_too_many_fields_is_400(akismet_site):
    """More form fields than the parser accepts is a 400 in plain text, not a 500."""
    client, key = akismet_site
    body = f"api_key={key}&comment_content=x&" + "a=1&" * 2001
    response = client.post("/1.1/comment-check", data=body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400 and response.mimetype == "text/plain"


def test_akismet_far_future_dates_and_nul_are_handled(akismet_site):
    """A date past datetime.max in UTC and NUL characters in fields are answered, not a 500/503."""
    client, key = akismet_site
    body = (
        f"api_key={key}&comment_content=a%00b&comment_author=x%00&comment_date_gmt=9999-12-31T23:59:59-23:59"
        "&blog=%00&comment_context[0]=%00&user_role=%00&user_ip=%00"
    )
    response = client.post("/1.1/comment-check", data=body, content_type="application/x-www-form-urlencoded")
    assert_akismet_answer(response)
    assert response.status_code == 200


@sqlite_only
def test_akismet_oversized_body_is_413(akismet_site, app):
    """A form body over MAX_CONTENT_LENGTH is a 413, not read into memory and not a 500."""
    client, key = akismet_site
    body = f"api_key={key}&comment_content=" + "x" * (app.config["MAX_CONTENT_LENGTH"] + 1)
    response = client.post("/1.1/comment-check", data=body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 413


def test_multipart_akismet_form_with_invalid_bytes(akismet_site):
    """A multipart Akismet form with undecodable bytes and a file part is answered, not a 500."""
    client, key = akismet_site
    body = (
        b'--b\r\nContent-Disposition: form-data; name="api_key"\r\n\r\n' + key.encode() + b"\r\n"
        b'--b\r\nContent-Disposition: form-data; name="comment_content"\r\n\r\n\xff\xfe\x00\xfd\r\n'
        b'--b\r\nContent-Disposition: form-data; name="comment_author"\r\n\r\nnul\x00name\r\n'
        b'--b\r\nContent-Disposition: form-data; name="f"; filename="x.bin"\r\n\r\n\x00\x01\r\n--b--\r\n'
    )
    response = client.post("/1.1/comment-check", data=body, content_type="multipart/form-data; boundary=b")
    assert_akismet_answer(response)


# --- The review UI's public form ---------------------------------------------------------------------


form_hostile = st.sampled_from(["\x00", "\u202e", "//evil.example", "\\", "%2f%2f", "\r\n"])
form_text = st.lists(form_hostile | st.text(), max_size=6)


@sqlite_only
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(username=form_text.map("".join), password=st.text(max_size=2000), next_url=form_text.map("".join))
def test_login_form_answers_any_input(app, username, password, next_url):
    """The login form (with a valid CSRF token) and any name, password and next URL answers 401, never a 5xx."""
    client = app.test_client()
    token = csrf_from(client.get("/review/login").get_data(as_text=True))
    data = {"username": username, "password": password, "next": next_url, "csrf_token": token}
    response = client.post("/review/login", data=data)
    assert response.status_code == 401, response.status_code  # 400 would mean the CSRF check, not the form, ran


REVIEW_PAGES = ["/review/", "/review/search", "/review/stats", "/review/sites", "/review/deliveries", "/review/login"]
REVIEW_ARGS = ["q", "site", "status", "decision", "since", "until", "sort", "page", "per_page", "days", "next"]
query_value = st.one_of(
    st.text(max_size=30),
    st.integers(-(2**80), 2**80).map(str),
    st.sampled_from(["-1", "0", "99999999999999999999", "1e309", "NaN", "2026-13-45", "9999-12-31T23:59:59-23:59"]),
    st.sampled_from(["\x00", "%00", "%ff", "' OR 1=1 --", "<script>", "//evil.example"]),
)


@sqlite_only
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    page=st.sampled_from(REVIEW_PAGES),
    args=st.dictionaries(st.sampled_from(REVIEW_ARGS) | st.text(max_size=4), query_value, max_size=6),
    comment_id=st.integers(-1, 2**64),
)
@example(page="/review/search", args={"q": "²"}, comment_id=1)  # isdigit() but not int(): was a 500
@example(page="/review/", args={"q": "9" * 30}, comment_id=1)  # an id past BIGINT: was a 500
def test_review_pages_answer_any_query_for_a_logged_in_admin(app, page, args, comment_id):
    """Queue, search, stats, sites, deliveries and item pages answer hostile query strings without a 5xx."""
    from moderation.store.users import create_user

    client = app.extensions.get("fuzz-admin-client")
    if client is None:  # log in once per app: argon2 per example would make this test slow for nothing
        with app.extensions["moderation"].sessions() as session:
            create_user(session, "fuzz-admin", PASSWORD, role="admin")
        client = app.extensions["fuzz-admin-client"] = app.test_client()
        login(client, "fuzz-admin")
    assert client.get("/review/").status_code == 200  # logged in: the fuzzing reaches the pages, not the login
    for path in (page, f"/review/comments/{comment_id}", f"/review/sites/{comment_id}"):
        response = client.get(path, query_string=args)
        assert response.status_code < 500, (path, args, response.status_code)


def test_review_ids_beyond_bigint_are_404(app):
    """Comment and site ids past BIGINT in review URLs are 404 on both databases (were a 500 / 503)."""
    from moderation.store.users import create_user

    with app.extensions["moderation"].sessions() as session:
        create_user(session, "big-admin", PASSWORD, role="admin")
    client = app.test_client()
    login(client, "big-admin")
    for number in (2**63, 2**70, 10**30):
        assert client.get(f"/review/comments/{number}").status_code == 404
        assert client.get(f"/review/sites/{number}").status_code == 404
    assert client.get(f"/review/comments/{2**63 - 1}").status_code == 404  # the largest id is merely absent


form_value = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["²", "١٢", "0", "-1", "99999999999999999999", "approve", "spam", "ham", "delete", "hold"]),
    st.sampled_from(["1e309", "NaN", "\x00", "<script>", "http://[::1", "javascript:alert(1)", "//evil.example"]),
)
REVIEW_FORM_FIELDS = [
    "action", "ids", "next", "focus", "name", "url", "callback_url", "hold", "spam", "discard", "max_links",
    "min_seconds", "blocklist", "allowlist", "flood_per_minute", "duplicate_authors", "trust_approved",
]  # fmt: skip
REVIEW_FORMS = ["/review/comments/1/decide", "/review/bulk", "/review/undo", "/review/sites", "/review/sites/1"]


@sqlite_only
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    path=st.sampled_from(REVIEW_FORMS),
    fields=st.lists(st.tuples(st.sampled_from(REVIEW_FORM_FIELDS) | st.text(max_size=4), form_value), max_size=8),
)
@example(path="/review/bulk", fields=[("ids", "²"), ("action", "spam")])  # isdigit() but not int(): was a 500
@example(path="/review/bulk", fields=[("ids", "9" * 20), ("action", "spam")])  # past BIGINT: was a 500
@example(path="/review/bulk", fields=[("ids", "0" * 5000 + "1"), ("action", "spam")])  # past int()'s digit limit
@example(path="/review/comments/1/decide", fields=[("action", "spam"), ("focus", "²")])  # was a 500
@example(path="/review/comments/1/decide", fields=[("action", "spam"), ("focus", "9" * 5000)])  # was a 500
def test_review_forms_answer_any_fields_for_a_logged_in_admin(app, path, fields):
    """Decide, bulk, undo and site forms with hostile fields (and a valid CSRF token) never answer a 5xx."""
    from moderation.store.users import create_user

    client = app.extensions.get("fuzz-form-client")
    if client is None:
        with app.extensions["moderation"].sessions() as session:
            create_user(session, "form-admin", PASSWORD, role="admin")
            create_site(session, "Blog", "https://blog.example")
        client = app.extensions["fuzz-form-client"] = app.test_client()
        login(client, "form-admin")
        app.extensions["fuzz-form-token"] = csrf_from(client.get("/review/sites").get_data(as_text=True))
    data = MultiDict([*fields, ("csrf_token", app.extensions["fuzz-form-token"])])
    response = client.post(path, data=data)
    assert response.status_code < 500, (path, fields, response.status_code)
    assert response.status_code != 400 or "Form expired" not in response.get_data(as_text=True)


def test_numbers_past_column_ranges_are_not_errors(app, client):
    """Site ids past INTEGER and comment ids or pages past BIGINT, in paths, filters and signed headers, are
    answered 404/401/200 on both databases (PostgreSQL answered 503 "database unavailable" before)."""
    from moderation.store.users import create_user

    with app.extensions["moderation"].sessions() as session:
        create_user(session, "range-admin", PASSWORD, role="admin")
    login(client, "range-admin")
    for number in (2**31, 2**63, 10**20):
        assert client.get(f"/review/sites/{number}").status_code == 404
        for name in ("site", "page"):
            for path in ("/review/", "/review/search"):
                assert client.get(path, query_string={name: str(number)}).status_code == 200, (path, name, number)
                assert client.get(path, query_string={name: str(-number)}).status_code == 200, (path, name, number)
    headers = {"X-Moderation-Site": str(2**31), "X-Moderation-Timestamp": "1", "X-Moderation-Signature": "sha256=0"}
    assert client.post("/api/v1/comments/check", json={"content": "x"}, headers=headers).status_code == 401
    headers["X-Moderation-Timestamp"] = str(int(time.time()))
    assert client.post("/api/v1/comments/check", json={"content": "x"}, headers=headers).status_code == 401


def _routes(app) -> list[tuple[str, list[str]]]:
    return sorted((rule.rule, sorted(rule.arguments)) for rule in app.url_map.iter_rules())


@sqlite_only
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_every_route_answers_any_request_without_5xx(model_dir, app, data):
    """Any route of the app (API, Akismet, review, ops, static), any method, filled-in path values, query and
    body, without credentials: never a 5xx (a model is loaded, so /readyz is 200)."""
    import re

    rule, arguments = data.draw(st.sampled_from(_routes(app)))
    path = rule
    for name in arguments:
        value = data.draw(st.one_of(st.integers(-(2**70), 2**70).map(str), st.text(min_size=1, max_size=12)))
        path = re.sub(r"<(?:[^:<>]+:)?" + name + r">", quote_from_bytes(value.encode("utf-8", "surrogatepass")), path)
    method = data.draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]))
    body = data.draw(st.binary(max_size=200))
    content_type = data.draw(
        st.sampled_from(["application/json", "application/x-www-form-urlencoded", "text/plain", "multipart/form-data"])
    )
    # gunicorn refuses raw non-ASCII bytes in the request line (400), so any bytes arrive percent-encoded.
    query = quote_from_bytes(data.draw(st.binary(max_size=30)), safe="=&")
    response = app.test_client().open(
        path, method=method, data=body, content_type=content_type, environ_overrides={"QUERY_STRING": query}
    )
    assert response.status_code < 500, (method, path, response.status_code)


@settings(max_examples=500, deadline=None)
@given(
    query=st.binary(max_size=300),
    body=st.binary(max_size=600),
    charset=st.one_of(st.none(), st.sampled_from(CHARSETS), st.text(max_size=12)),
    host=st.text(max_size=80),
)
def test_akismet_parsers_never_raise_and_give_storable_text(query, body, charset, host):
    """parse_params, parse_comment and key_from_host take any bytes, charset and Host: no exception, and every
    value is storable text (no lone surrogates, no NUL)."""
    from moderation.web.akismet import key_from_host, parse_comment, parse_params

    try:
        params = parse_params(query, body, content_type_charset=charset)
    except ValueError:  # too many fields: the view answers 400
        return
    for name, values in params.items():
        for value in [name, *values]:
            value.encode("utf-8")
            assert "\x00" not in value
    parsed = parse_comment(params)
    assert isinstance(parsed.comment.content, str)
    assert isinstance(key_from_host(host), str)


# --- Raw surrogate bytes, header injection through `next`, dates past the calendar -----------------------

# UTF-8 encodes no surrogate; Python's JSON decoder still reads these bytes as one (`surrogatepass`).
RAW_SURROGATE = b"\xed\xa0\x80"


@pytest.mark.parametrize("field", ["content", "author_name", "user_agent"])
def test_raw_surrogate_bytes_in_a_check_are_400(client, site_key, field):
    """UTF-8 bytes of a lone surrogate (ED A0 80) in content, author name or user agent: 400 in the error shape."""
    body = b'{"content": "hello", "' + field.encode() + b'": "x' + RAW_SURROGATE + b'"}'
    response = client.post("/api/v1/comments/check", data=body, headers=auth(site_key), content_type="application/json")
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    assert_json_answer(response)


def test_raw_surrogate_bytes_in_a_feedback_reporter_are_400(client, site_key):
    """A feedback `reporter` holding the bytes of a lone surrogate is a 400 in the error shape, and stores nothing."""
    checked = client.post("/api/v1/comments/check", json={"content": "Nice post"}, headers=auth(site_key)).get_json()
    body = b'{"label": "spam", "reporter": "' + RAW_SURROGATE + b'"}'
    response = client.post(
        f"/api/v1/comments/{checked['id']}/feedback", data=body, headers=auth(site_key), content_type="application/json"
    )
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "bad_request"
    shown = client.get(f"/api/v1/comments/{checked['id']}", headers=auth(site_key)).get_json()
    assert shown["labels"] == []


def test_raw_surrogate_bytes_in_akismet_forms_are_stored_readable(akismet_site):
    """Akismet comment-check and submit-spam with lone-surrogate bytes in content, author and user agent answer
    their documented words, whether percent-encoded or raw."""
    client, key = akismet_site
    for path in ("/1.1/comment-check", "/1.1/submit-spam", "/1.1/submit-ham"):
        encoded = b"api_key=" + key.encode() + b"&comment_content=a%ED%A0%80b&comment_author=%ED%A0%80"
        raw = b"api_key=" + key.encode() + b"&comment_content=a" + RAW_SURROGATE + b"&user_agent=" + RAW_SURROGATE
        for body in (encoded, raw):
            response = client.post(path, data=body, content_type="application/x-www-form-urlencoded")
            assert_akismet_answer(response)
            assert response.status_code == 200


@pytest.fixture
def logged_in(app):
    """A logged-in admin's test client and one held comment's id."""
    from review_helpers import add_comment, add_site, add_user

    sessions = app.extensions["moderation"].sessions
    add_user(sessions, "crlf-admin")
    site_id, _ = add_site(sessions)
    comment_id = add_comment(sessions, site_id, "held for review")
    client = app.test_client()
    assert login(client, "crlf-admin").status_code == 302
    return client, comment_id


@sqlite_only
@pytest.mark.parametrize("target", ["/review/%0d%0aX:%201", "/review/%0aX", "/review/%0d", "/review/\t", "/review/%7f"])
def test_login_next_with_control_characters_redirects_safely(logged_in, target):
    """/review/login?next= with CR, LF or another control character redirects to the queue, never a 500."""
    client, _ = logged_in
    response = client.get(f"/review/login?next={target}")
    assert response.status_code == 302 and response.headers["Location"] == "/review/"


@sqlite_only
def test_decide_with_a_crlf_next_commits_once_and_offers_undo(logged_in, app):
    """A decide form whose `next` holds CR/LF applies the action, redirects to the queue and offers the undo."""
    from moderation.store.schema import CommentRecord

    client, comment_id = logged_in
    token = csrf_from(client.get("/review/").get_data(as_text=True))
    form = {"action": "spam", "next": "/review/\r\nX: 1", "csrf_token": token}
    response = client.post(f"/review/comments/{comment_id}/decide", data=form)
    assert response.status_code == 302 and response.headers["Location"] == "/review/"
    with app.extensions["moderation"].sessions() as session:
        assert session.get(CommentRecord, comment_id).status == "spam"
    assert 'id="undo-button"' in client.get("/review/").get_data(as_text=True)


@sqlite_only
@pytest.mark.parametrize("page", ["/review/", "/review/search"])
def test_until_the_last_day_of_the_calendar_is_a_400_page(logged_in, page):
    """`until=9999-12-31` (the day after it does not exist) is a 400 page naming the field, not an OverflowError."""
    client, _ = logged_in
    response = client.get(page, query_string={"until": "9999-12-31"})
    assert response.status_code == 400
    assert "until" in response.get_data(as_text=True)
