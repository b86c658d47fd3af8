"""Akismet's REST protocol, so sites and plugins that speak it can use us unchanged.

    POST /1.1/verify-key        valid | invalid
    POST /1.1/comment-check     true | false  (+ X-akismet-pro-tip: discard, X-akismet-guid: our comment id,
                                X-Moderation-Decision: approve | hold | spam | discard)
    POST /1.1/submit-spam       Thanks for making the web a better place.   (a spam label, source "akismet")
    POST /1.1/submit-ham        Thanks for making the web a better place.   (a ham label, source "akismet")
    GET  /1.1/test              connected
    POST /1.1/get-subscription  JSON: an active subscription without limits (the WordPress settings page)
    POST /1.1/get-stats         JSON: spam, ham, missed spam, false positives, accuracy (from=6-months | all)
    POST /1.1/token             an opaque token (newer WordPress plugins ask for one for Akismet's stats pages)
    GET  /1.2/usage-limit       JSON, from our own counts
    GET  /1.2/key-sites         JSON or CSV (month, filter, order, limit, offset), from our own counts

Every route is also served under `/k/<key>/...` for clients that cannot send the key any other way, and
the key may be the first label of the Host header (`<key>.akismet.example.org`), as older clients send
it. A bad key is answered the way Akismet answers it: HTTP 200, body `invalid`, and an
`X-akismet-debug-help` header saying why. Normal answers carry no debug or alert header, because some
clients treat any such header as an error.

Our four decisions map onto Akismet's two words: approve → `false`; hold and spam → `true`; discard →
`true` with `X-akismet-pro-tip: discard`. `X-Moderation-Decision` names the decision itself, so a site
that knows us (the WordPress must-use plugin in docs/akismet.md) can file a held comment as pending. A
held comment stays in our review queue; the site learns the moderator's decision through the native
status endpoint or a callback. A comment-check without `blog` or `user_ip` is answered as Akismet answers
it, `Missing required field: <name>.`; a recheck (`recheck_reason`) of a comment we already stored is
answered from its current status, a moderator's decision included, without storing it again.

Parsing is plain Python (`parse_params`, `parse_comment`, `key_from_host`, `akismet_trigger`); the views only
parse, call `checking.check_and_store` or `labels.record_label`, and render.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from flask import Blueprint, Response, abort, current_app, jsonify, request
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from moderation.checking.check import check_and_store, site_settings
from moderation.comment import Comment, Decision, Label, Verdict
from moderation.errors import StoreError
from moderation.policy.rules import fingerprint
from moderation.store.labels import record_label
from moderation.store.schema import AuditEvent, CommentRecord, LabelRecord, Site
from moderation.store.sites import site_for_key
from moderation.web.limits import Refusal, site_budget
from moderation.web.openapi import PAGE_TAG_LIMIT, PAGE_TAGS_LIMIT

bp = Blueprint("akismet", __name__)

Params = dict[str, list[str]]

THANKS = "Thanks for making the web a better place."
# Akismet's spam triggers: the documented author, and the older one client test suites still send.
GUARANTEED_SPAM_AUTHORS = ("akismet-guaranteed-spam", "viagra-test-123")
GUARANTEED_SPAM_EMAIL = "akismet-guaranteed-spam@example.com"
REQUIRED_CHECK_FIELDS = ("blog", "user_ip")  # Akismet documents both as required for comment-check
DECISION_HEADER = "X-Moderation-Decision"
# The hidden field the WordPress plugin adds to comment forms; it sends it as POST_ak_hp_textarea
# without naming it in honeypot_field_name.
WORDPRESS_HONEYPOT = "ak_hp_textarea"
# What an "active, unlimited" subscription looks like to the WordPress plugin (status decides whether
# it keeps the key; account_type other than free-api-key hides its upgrade nags).
SUBSCRIPTION = {
    "status": "active",
    "account_type": "self-hosted",
    "account_name": "Self-hosted moderation",
    "next_billing_date": None,
    "limit_reached": False,
}
STATS_WINDOWS = {"6-months": 6, "all": None}  # get-stats `from`: calendar months including this one
KEY_SHAPE = re.compile(r"[a-z0-9]{12}")
MONTH_SHAPE = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
KEY_SITES_DEFAULT_LIMIT = 500  # Akismet's documented default
KEY_SITES_ORDERS = {
    "total": "api_calls",
    "spam": "spam",
    "ham": "ham",
    "missed_spam": "missed_spam",
    "false_positives": "false_positives",
}
KEY_SITES_CSV_HEADER = ("Site", "Total API Calls", "Spam", "Ham", "Missed Spam", "False Positives", "Is Revoked")

# Akismet parameters that map onto `Comment` fields, and the documented ones we keep in `extra`.
COMMENT_FIELDS = {
    "comment_content": "content",
    "comment_author": "author_name",
    "comment_author_email": "author_email",
    "comment_author_url": "author_url",
    "user_ip": "user_ip",
    "user_agent": "user_agent",
    "referrer": "referrer",
    "permalink": "permalink",
    "comment_type": "comment_type",
    "blog_lang": "language",
}
EXTRA_FIELDS = (
    "blog",
    "blog_lang",
    "blog_charset",
    "user_role",
    "recheck_reason",
    "comment_date_gmt",
    "comment_post_modified_gmt",
    "honeypot_field_name",
)
DOCUMENTED = {
    *COMMENT_FIELDS,
    *EXTRA_FIELDS,
    "api_key",
    "key",
    "content_type",
    "is_test",
    "comment_context",
    "hidden_honeypot_field",
    "guid",
}
_TRUE_WORDS = {"1", "true", "yes", "on"}

# Labels that WHATWG (and so every browser) decodes as windows-1252: a form on an "ISO-8859-1" page
# really submits windows-1252, curly quotes and euro sign included.
_WINDOWS_1252_ALIASES = {"latin_1", "iso8859_1", "ascii"}


# ---------------------------------------------------------------------------------------------------
# Parsing: bytes → parameters → Comment. No Flask below this line until the views.


def text_codec(label: str | None) -> str:
    """The Python codec for a charset label; UTF-8 when the label is empty, unknown or not a text codec."""
    if not label:
        return "utf-8"
    try:
        name = codecs.lookup(label.strip().strip("\"'")).name
    except LookupError:
        return "utf-8"
    try:
        b"\0\0\0\0".decode(name)  # bytes.decode refuses bytes-to-bytes codecs such as base64 or rot13
    except LookupError:
        return "utf-8"
    except ValueError:
        pass  # a text codec that merely dislikes these four bytes
    normalized = name.replace("-", "_")
    return "cp1252" if normalized in _WINDOWS_1252_ALIASES else name


def decode_value(raw: bytes, codec: str) -> str:
    """Decode `raw` with `codec`; bytes that do not fit are retried as UTF-8, then replaced (never an error)."""
    for candidate in (codec, "utf-8"):
        try:
            return _unicode(raw.decode(candidate))
        except UnicodeError:  # UnicodeDecodeError, or plain UnicodeError from punycode and idna
            continue
    # windows-1252 leaves five bytes undefined; Latin-1 maps every byte, so nothing is lost there.
    fallback = "latin-1" if codec == "cp1252" else codec
    try:
        return _unicode(raw.decode(fallback, errors="replace"))
    except UnicodeError:  # punycode and idna fail even with errors="replace"
        return _unicode(raw.decode("utf-8", errors="replace"))


def _unicode(text: str) -> str:
    # unicode_escape and utf-7 decode "\ud800" and "+2AA-" to lone surrogates, which no database can store
    # (a 500 before this): pair up what pairs, replace the rest with U+FFFD. PostgreSQL refuses NUL in text
    # (a 503 "database unavailable" before this), so NUL becomes U+FFFD too.
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace").replace("\x00", "\ufffd")


def _byte_pairs(raw: bytes) -> list[tuple[bytes, bytes]]:
    # Latin-1 maps each byte to one character and back, so percent-escapes and raw 8-bit bytes both
    # come out as the original bytes, whatever charset the site really used.
    text = raw.decode("latin-1")
    pairs = parse_qsl(text, keep_blank_values=True, encoding="latin-1", max_num_fields=2000)
    return [(name.encode("latin-1"), value.encode("latin-1")) for name, value in pairs]


def parse_params(*bodies: bytes, content_type_charset: str | None = None) -> Params:
    """Parse URL-encoded `bodies` (query string, then form body) into name → values.

    The charset is the `blog_charset` parameter, else the Content-Type's charset, else UTF-8; values that
    are not valid in it fall back to UTF-8 and finally to replacement characters. Too many fields → ValueError.
    """
    pairs = [pair for body in bodies if body for pair in _byte_pairs(body)]
    declared = next((value for name, value in pairs if name == b"blog_charset" and value), b"")
    codec = text_codec(declared.decode("ascii", errors="ignore") or content_type_charset)
    params: Params = {}
    for name, value in pairs:
        params.setdefault(decode_value(name, codec), []).append(decode_value(value, codec))
    return params


def first(params: Mapping[str, list[str]], name: str, default: str = "") -> str:
    """The first value of `name`, or `default`."""
    values = params.get(name)
    return values[0] if values else default


def _is_true(value: str) -> bool:
    return value.strip().lower() in _TRUE_WORDS


def _parse_gmt(value: str) -> datetime | None:
    """ISO 8601 or WordPress's "YYYY-MM-DD HH:MM:SS" as UTC; None when empty or unreadable."""
    try:
        parsed = datetime.fromisoformat(value.strip())
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):  # "9999-12-31T23:59:59-23:59" is valid ISO but past datetime.max in UTC
        return None


_CONTEXT_NAME = re.compile(r"comment_context(\[\d*\])?")


def comment_context(params: Mapping[str, list[str]]) -> list[str]:
    """`comment_context`, `comment_context[]` and `comment_context[n]` values, in index order."""
    indexed: list[tuple[int, int, str]] = []
    for position, (name, values) in enumerate(params.items()):
        match = _CONTEXT_NAME.fullmatch(name)
        if not match:
            continue
        digits = (match.group(1) or "[]")[1:-1]
        index = int(digits) if digits else -1
        indexed.extend((index, position, value) for value in values)
    return [value for _, _, value in sorted(indexed, key=lambda item: (item[0] < 0, item[0], item[1])) if value]


def honeypot_value(params: Mapping[str, list[str]]) -> str:
    """What the bot typed into the honeypot: `hidden_honeypot_field`, else the field `honeypot_field_name` names,
    else the WordPress plugin's own hidden field (`POST_ak_hp_textarea`), which it sends unnamed.

    The named field may arrive bare or as WordPress's `POST_<name>`. A name that is itself a documented
    parameter is not a honeypot (that would discard every comment).
    """
    value = first(params, "hidden_honeypot_field")
    name = first(params, "honeypot_field_name")
    if value:
        return value
    if not name:
        return first(params, f"POST_{WORDPRESS_HONEYPOT}")
    if name in DOCUMENTED or name.startswith("comment_context"):
        return ""
    return first(params, name) or first(params, f"POST_{name}")


@dataclass(frozen=True, slots=True)
class AkismetComment:
    """A comment as an Akismet client described it: the typed comment, the other documented fields, test flag."""

    comment: Comment
    extra: dict[str, Any]
    is_test: bool
    user_roles: tuple[str, ...]


def _column_limits() -> dict[str, int]:
    limits = {}
    for column in CommentRecord.__table__.columns:
        length = getattr(column.type, "length", None)
        if length:
            limits[column.name] = int(length)
    return limits


def parse_comment(params: Mapping[str, list[str]]) -> AkismetComment:
    """Turn Akismet parameters into a `Comment` plus `extra`; unknown parameters (POST_*, HTTP_*, nonces) are dropped.

    Values longer than our columns are cut to fit, so a hostile client cannot turn a check into a
    database error. `content_type` is read as `comment_type` when that is absent.
    """
    limits = _column_limits()
    fields: dict[str, Any] = {}
    for param, field_name in COMMENT_FIELDS.items():
        value = first(params, param)
        if param == "comment_type" and not value:
            value = first(params, "content_type")
        fields[field_name] = value[: limits.get(field_name, len(value))]
    if "user_agent" not in params:
        fields["user_agent"] = None  # the site did not tell us; "" would mean the browser sent none
    # comment_context (the post's tags or categories) is what the page is about: the check stores it
    # with the comment as its page context.
    context = tuple(value[:PAGE_TAG_LIMIT] for value in comment_context(params)[:PAGE_TAGS_LIMIT])
    comment = Comment(**fields, submitted_at=_parse_gmt(first(params, "comment_date_gmt")), page_context=context)
    extra: dict[str, Any] = {name: first(params, name) for name in EXTRA_FIELDS if first(params, name)}
    honeypot = honeypot_value(params)
    if honeypot:
        extra["honeypot"] = honeypot  # the check feeds it to the honeypot rule, stores a flag
    roles = tuple(role.strip().lower() for role in first(params, "user_role").split(",") if role.strip())
    return AkismetComment(comment, extra, _is_true(first(params, "is_test")), roles)


@dataclass(frozen=True, slots=True)
class Trigger:
    """One of Akismet's documented test triggers: the answer it forces and why."""

    decision: Decision
    reason: str


def akismet_trigger(parsed: AkismetComment) -> Trigger | None:
    """Akismet's test triggers: a guaranteed-spam author or email → spam; user_role administrator → ham."""
    comment = parsed.comment
    if comment.author_name in GUARANTEED_SPAM_AUTHORS:
        return Trigger(Decision.SPAM, f"Akismet test trigger: the author is {comment.author_name}")
    if comment.author_email.lower() == GUARANTEED_SPAM_EMAIL:
        return Trigger(Decision.SPAM, f"Akismet test trigger: the author's email is {GUARANTEED_SPAM_EMAIL}")
    if "administrator" in parsed.user_roles:
        return Trigger(Decision.APPROVE, "Akismet test trigger: the commenter's role is administrator")
    return None


def key_from_host(host: str) -> str:
    """The key in a Host header of the form `<key>.example.org[:port]`, or "" when the first label is not key-shaped."""
    if not host or host.startswith("["):  # an IPv6 literal has no subdomain
        return ""
    labels = host.rsplit(":", 1)[0].lower().split(".")
    if len(labels) >= 3 and KEY_SHAPE.fullmatch(labels[0]):
        return labels[0]
    return ""


def request_key(
    params: Mapping[str, list[str]], path_key: str | None, host: str, *, names: tuple[str, ...] = ("api_key", "key")
) -> str:
    """The API key: the first of the `names` parameters, else the `/k/<key>/` path prefix, else the Host subdomain."""
    return next((first(params, name) for name in names if first(params, name)), "") or path_key or key_from_host(host)


# ---------------------------------------------------------------------------------------------------
# Counts for usage-limit and key-sites.


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """[start, end) of a "YYYY-MM" month in UTC. Malformed month → ValueError."""
    if not MONTH_SHAPE.fullmatch(month):
        raise ValueError(f"month: expected YYYY-MM, found {month!r}")
    year, number = int(month[:4]), int(month[5:])
    start = datetime(year, number, 1, tzinfo=UTC)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=UTC)
    return start, end


def current_month(now: datetime | None = None) -> str:
    """This month as "YYYY-MM" (UTC)."""
    return (now or datetime.now(UTC)).strftime("%Y-%m")


def checks_in(session: Session, site_id: int, start: datetime, end: datetime) -> int:
    """How many comments `site_id` had checked in [start, end)."""
    query = select(func.count(CommentRecord.id)).where(
        CommentRecord.site_id == site_id, CommentRecord.created_at >= start, CommentRecord.created_at < end
    )
    return int(session.scalar(query) or 0)


def _count_by_decision(session: Session, site_id: int, start: datetime, end: datetime) -> dict[str, int]:
    query = (
        select(CommentRecord.decision, func.count(CommentRecord.id))
        .where(CommentRecord.site_id == site_id, CommentRecord.created_at >= start, CommentRecord.created_at < end)
        .group_by(CommentRecord.decision)
    )
    return {decision: int(count) for decision, count in session.execute(query)}


def _reports(session: Session, site_id: int, start: datetime, end: datetime, label: Label, approved: bool) -> int:
    """Distinct comments labelled `label` in [start, end) whose automatic decision was (not) approve."""
    decided = CommentRecord.decision == "approve" if approved else CommentRecord.decision != "approve"
    query = (
        select(func.count(func.distinct(LabelRecord.comment_id)))
        .join(CommentRecord, LabelRecord.comment_id == CommentRecord.id)
        .where(
            CommentRecord.site_id == site_id,
            LabelRecord.label == label.value,
            LabelRecord.created_at >= start,
            LabelRecord.created_at < end,
            decided,
        )
    )
    return int(session.scalar(query) or 0)


def site_name(site: Site) -> str:
    """How key-sites names a site: the host of its URL, else its name."""
    return urlsplit(site.url).hostname or site.url or site.name


def activity(session: Session, site_id: int, start: datetime, end: datetime) -> dict[str, int]:
    """What a site's checks in [start, end) came to: api_calls, spam, ham, missed_spam, false_positives.

    spam = comments we did not approve (hold, spam, discard: all answered `true`); missed_spam = comments
    we approved that were labelled spam in the window; false_positives = the reverse.
    """
    decisions = _count_by_decision(session, site_id, start, end)
    ham = decisions.get("approve", 0)
    total = sum(decisions.values())
    return {
        "api_calls": total,
        "spam": total - ham,
        "ham": ham,
        "missed_spam": _reports(session, site_id, start, end, Label.SPAM, approved=True),
        "false_positives": _reports(session, site_id, start, end, Label.HAM, approved=False),
    }


def site_activity(session: Session, site: Site, month: str) -> dict[str, Any]:
    """One key-sites row for `site` in `month`, counts as strings the way Akismet's sample shows them."""
    counts = activity(session, site.id, *month_bounds(month))
    return {
        "site": site_name(site),
        **{name: str(counts[name]) for name in ("api_calls", "spam", "ham", "missed_spam", "false_positives")},
        "is_revoked": site.revoked_at is not None,
    }


def stats_window(window: str, now: datetime | None = None) -> tuple[datetime, datetime]:
    """[start, end) of a get-stats `from`: "6-months" is this calendar month and the five before (UTC);
    anything else, "all" included, is all time."""
    months = STATS_WINDOWS.get(window)
    now = now or datetime.now(UTC)
    if months is None:
        return datetime(1970, 1, 1, tzinfo=UTC), datetime(9999, 1, 1, tzinfo=UTC)
    index = now.year * 12 + now.month - 1 - (months - 1)
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC), datetime(9999, 1, 1, tzinfo=UTC)


def site_stats(session: Session, site_id: int, window: str) -> dict[str, Any]:
    """get-stats for a site: spam, ham, missed_spam, false_positives and accuracy (percent of checks whose
    answer no one corrected; 100 before the first check), as the WordPress plugin's settings page draws them."""
    counts = activity(session, site_id, *stats_window(window))
    checked = counts["api_calls"]
    wrong = counts["missed_spam"] + counts["false_positives"]
    accuracy = round(100 * (checked - wrong) / checked, 2) if checked else 100.0
    return {name: counts[name] for name in ("spam", "ham", "missed_spam", "false_positives")} | {"accuracy": accuracy}


def _int_param(value: str, default: int) -> int:
    try:
        number = int(value)
    except ValueError:
        return default
    return number if number >= 0 else default


def key_sites_csv(key: str, month: str, rows: list[dict[str, Any]], *, limit: int, offset: int, total: int) -> str:
    """Akismet's CSV report: a title line, the column names, one line per site."""
    out = io.StringIO()
    out.write(f"Active sites for {key} during {month} (limit:{limit}, offset: {offset}, total: {total})\n")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(KEY_SITES_CSV_HEADER)
    for row in rows:
        writer.writerow(
            [row["site"], row["api_calls"], row["spam"], row["ham"], row["missed_spam"], row["false_positives"],
             "true" if row["is_revoked"] else "false"]
        )
    return out.getvalue().rstrip("\n")


# ---------------------------------------------------------------------------------------------------
# Views.


def _state() -> Any:
    return current_app.extensions["moderation"]


def _params() -> Params:
    """Query string and form body, decoded with the site's charset (we read the raw body ourselves)."""
    body = b"" if request.mimetype == "multipart/form-data" else request.get_data(cache=True)
    try:
        params = parse_params(request.query_string, body, content_type_charset=request.mimetype_params.get("charset"))
    except ValueError as exc:  # more form fields than parse_params accepts (a 500 before this)
        abort(Response(f"Bad request: {exc}", status=400, mimetype="text/plain"))
    if request.mimetype == "multipart/form-data":
        for name, values in request.form.lists():
            params.setdefault(_unicode(name), []).extend(_unicode(value) for value in values)
    return params


def _text(body: str, headers: Mapping[str, str] | None = None) -> Response:
    return Response(body, status=200, mimetype="text/plain", headers=dict(headers or {}))


def _invalid(why: str) -> Response:
    return _text("invalid", {"X-akismet-debug-help": why})


def _site(
    session: Session,
    params: Params,
    path_key: str | None,
    *,
    writes: bool,
    names: tuple[str, ...] = ("api_key", "key"),
) -> tuple[Site | None, str, Response | None]:
    """(site, key, None) for this request, or (None, key, the answer instead): `invalid` with the reason, or
    429 when this address used up its failed authentications or the site (for a request that `writes`) its budget.
    """
    limits = _state().limits
    address = request.remote_addr or ""
    refusal = limits.refused(address)
    if refusal is not None:
        return None, "", _rate_limited(refusal, "too many failed authentications from this address")
    key = request_key(params, path_key, request.host, names=names)
    site = site_for_key(session, key) if key else None
    if site is None:
        limits.failed(address)
        if not key:
            return None, "", _invalid('Empty "api_key" value: send api_key, use <key>.<host>, or /k/<key>/ in the path')
        return None, key, _invalid("Invalid API key: unknown or revoked on this server")
    if writes:
        refusal = limits.spend(site_budget(site), site_settings(site).extra.get("rate_limit"))
        if refusal is not None:
            return None, key, _rate_limited(refusal, "this site's rate limit is used up")
    return site, key, None


def _rate_limited(refusal: Refusal, why: str) -> Response:
    """429 in Akismet's plain-text style: clients that know no 429 treat it as any failed call (and hold)."""
    body = f"rate limit exceeded: {why} ({refusal.limit}); retry in {refusal.retry_after} s"
    return Response(body, status=429, mimetype="text/plain", headers={"Retry-After": str(refusal.retry_after)})


def _endpoints(rule: str) -> tuple[str, str]:
    """The endpoint names of `rule` and of its `/k/<key>` twin, e.g. "1_1_comment_check"."""
    # One endpoint per rule: sharing one, werkzeug would 308-redirect /1.2/usage-limit to /1.1/usage-limit.
    name = re.sub(r"\W", "_", rule.strip("/"))
    return name, name + "_keyed"


def _route(rule: str, methods: Iterable[str]) -> Any:
    """Register a view at `rule` and at `/k/<path_key>` + `rule`."""
    def register(view: Any) -> Any:
        bp.add_url_rule(rule, _endpoints(rule)[0], view, methods=list(methods), defaults={"path_key": None})
        bp.add_url_rule("/k/<path_key>" + rule, _endpoints(rule)[1], view, methods=list(methods))
        return view
    return register


@_route("/1.1/test", ("GET", "POST"))
def connectivity(path_key: str | None) -> Response:
    """The WordPress plugin's connectivity probe."""
    return _text("connected")


@_route("/1.1/verify-key", ("GET", "POST"))
def verify_key(path_key: str | None) -> Response:
    """`valid` when the key belongs to an active site, else `invalid` with a debug header."""
    params = _params()
    with _state().sessions() as session:
        # `key` is the one to verify: WordPress also sends its currently stored key as api_key.
        site, _key, refusal = _site(session, params, path_key, writes=False, names=("key", "api_key"))
    if site is None:
        return refusal or _text("invalid")
    return _text("valid")


@_route("/1.1/comment-check", ("POST",))
def comment_check(path_key: str | None) -> Response:
    """Check, store (source "akismet") and answer `true`/`false` with the discard tip, our comment id and our
    decision; a recheck of a comment we stored is answered from its current status instead."""
    params = _params()
    state = _state()
    with state.sessions() as session:
        site, _key, refusal = _site(session, params, path_key, writes=True)
        if site is None:
            return refusal or _text("invalid")
        missing = missing_field(params)
        if missing:
            return _missing(missing)
        parsed = parse_comment(params)
        record = _rechecked(session, site, parsed, params)
        if record is None:
            record, _verdict = _check_and_store(session, state, site, parsed, parsed.extra)
            trigger = akismet_trigger(parsed)
            if trigger is not None:
                _apply_trigger(session, record, trigger)
        return _check_answer(record)


def missing_field(params: Mapping[str, list[str]]) -> str:
    """The first of comment-check's required fields that is absent or blank, or "" when all are there."""
    return next((name for name in REQUIRED_CHECK_FIELDS if not first(params, name).strip()), "")


def _missing(name: str) -> Response:
    message = f"Missing required field: {name}."
    return _text(message, {"X-akismet-debug-help": message})


def _check_answer(record: CommentRecord) -> Response:
    """comment-check's answer for a stored comment's current status ("deleted" counts as discard)."""
    decision = Decision.DISCARD if record.status == "deleted" else Decision(record.status)
    headers = {"X-akismet-guid": str(record.id), DECISION_HEADER: decision.value}
    if decision is Decision.DISCARD:
        headers["X-akismet-pro-tip"] = "discard"
    return _text("false" if decision is Decision.APPROVE else "true", headers)


def _rechecked(session: Session, site: Site, parsed: AkismetComment, params: Params) -> CommentRecord | None:
    """The stored comment a recheck (`recheck_reason` set) asks about again, or None: not a recheck, never
    stored, or its text changed since (an edited comment is checked afresh)."""
    if not first(params, "recheck_reason"):
        return None
    record = find_submitted(session, site, parsed, first(params, "guid").strip())
    if record is None or record.content_hash != fingerprint(parsed.comment.content):
        return None
    return record


def _check_and_store(
    session: Session, state: Any, site: Site, parsed: AkismetComment, extra: dict[str, Any]
) -> tuple[CommentRecord, Verdict]:
    """Check `parsed` with the served model and store it as an Akismet call's (source "akismet", `extra` kept);
    the stored row comes back through `session`, for a label or a test trigger to follow."""
    stored = check_and_store(
        state.engine,
        site.id,
        site_settings(site),
        parsed.comment,
        model=state.models.get(),
        source="akismet",
        extra=extra,
        is_test=parsed.is_test,
        anonymize_ip=bool(state.settings.get("ANONYMIZE_IP")),
    )
    record = session.get(CommentRecord, stored.id)
    if record is None:  # stored and committed a moment ago: only a concurrent purge with --delete removes it
        raise StoreError(f"checked comment {stored.id} vanished before it could be read back")
    return record, stored.verdict


def _apply_trigger(session: Session, record: CommentRecord, trigger: Trigger) -> None:
    """Store the decision a test trigger forced, with its reason and an audit event."""
    before = record.decision
    record.decision = record.status = trigger.decision.value
    record.reasons = [trigger.reason]
    record.rules = ["akismet_test_trigger"]
    session.add(
        AuditEvent(actor=f"site:{record.site_id}", action="akismet.test_trigger", site_id=record.site_id,
                   comment_id=record.id, detail={"from": before, "to": trigger.decision.value})
    )
    session.commit()


def find_submitted(session: Session, site: Site, parsed: AkismetComment, guid: str) -> CommentRecord | None:
    """The stored comment a submit-spam/ham call refers to: by our id (guid), else by text and author."""
    # isdigit() alone accepts "²" (int() refuses it), and ids past BIGINT overflow the driver: both were 500s.
    if guid.isascii() and guid.isdigit() and len(guid) < 20 and int(guid) < 2**63:
        record = session.get(CommentRecord, int(guid))
        if record is not None and record.site_id == site.id:
            return record
    comment = parsed.comment
    query = (
        select(CommentRecord)
        .where(
            CommentRecord.site_id == site.id,
            CommentRecord.content_hash == fingerprint(comment.content),
            CommentRecord.author_name == comment.author_name,
        )
        .order_by(CommentRecord.id.desc())
        .limit(1)
    )
    return session.scalar(query)


def _submit(path_key: str | None, label: Label) -> Response:
    params = _params()
    state = _state()
    with state.sessions() as session:
        site, _key, refusal = _site(session, params, path_key, writes=True)
        if site is None:
            return refusal or _text("invalid")
        parsed = parse_comment(params)
        record = find_submitted(session, site, parsed, first(params, "guid").strip())
        if record is None:
            # Never checked here (or checked before the site moved to us): store it so the label counts.
            extra = {**parsed.extra, "submitted_as": label.value}
            record, _verdict = _check_and_store(session, state, site, parsed, extra)
        record_label(session, record, label, source="akismet", actor=f"site:{site.id}")
    return _text(THANKS)


@_route("/1.1/submit-spam", ("POST",))
def submit_spam(path_key: str | None) -> Response:
    """Missed spam: label the stored comment spam (found by guid or text+author, else stored now)."""
    return _submit(path_key, Label.SPAM)


@_route("/1.1/submit-ham", ("POST",))
def submit_ham(path_key: str | None) -> Response:
    """A false positive: label the stored comment ham."""
    return _submit(path_key, Label.HAM)


@_route("/1.1/get-subscription", ("GET", "POST"))
def get_subscription(path_key: str | None) -> Response:
    """An active subscription without limits for the key's site: the WordPress plugin keeps a key only then."""
    params = _params()
    with _state().sessions() as session:
        # Like verify-key: `key` is the key being entered, api_key the one WordPress stored before.
        site, _key, refusal = _site(session, params, path_key, writes=False, names=("key", "api_key"))
    return jsonify(SUBSCRIPTION) if site is not None else refusal or _text("invalid")


@_route("/1.1/get-stats", ("GET", "POST"))
def get_stats(path_key: str | None) -> Response:
    """The site's spam, ham, missed spam, false positives and accuracy since `from` (6-months or all)."""
    params = _params()
    with _state().sessions() as session:
        site, _key, refusal = _site(session, params, path_key, writes=False, names=("key", "api_key"))
        if site is None:
            return refusal or _text("invalid")
        stats = site_stats(session, site.id, first(params, "from"))
    return jsonify(stats)


@_route("/1.1/token", ("GET", "POST"))
def token(path_key: str | None) -> Response:
    """An opaque token. Newer WordPress plugins trade the key for one to embed Akismet's own stats pages
    (tools.akismet.com); nothing here accepts it, so it grants nothing."""
    params = _params()
    with _state().sessions() as session:
        site, _key, refusal = _site(session, params, path_key, writes=False)
    return _text(secrets.token_urlsafe(24)) if site is not None else refusal or _text("invalid")


def usage_limit(path_key: str | None) -> Response:
    """This month's checks for the key's site; we set no limit, so never throttled."""
    params = _params()
    with _state().sessions() as session:
        site, _key, refusal = _site(session, params, path_key, writes=False)
        if site is None:
            return refusal or _text("invalid")
        usage = checks_in(session, site.id, *month_bounds(current_month()))
    return jsonify({"limit": "none", "usage": usage, "percentage": "0.00", "throttled": False})


def key_sites(path_key: str | None) -> Response:
    """Activity of the sites using this key (one key is one site here), as JSON or Akismet's CSV."""
    params = _params()
    month = first(params, "month") or current_month()
    if not MONTH_SHAPE.fullmatch(month):
        month = current_month()
    limit = _int_param(first(params, "limit"), KEY_SITES_DEFAULT_LIMIT)
    offset = _int_param(first(params, "offset"), 0)
    order = KEY_SITES_ORDERS.get(first(params, "order"), "api_calls")
    url_filter = first(params, "filter").lower()
    with _state().sessions() as session:
        site, key, refusal = _site(session, params, path_key, writes=False)
        if site is None:
            return refusal or _text("invalid")
        rows = [site_activity(session, site, month)]
    rows = [row for row in rows if url_filter in row["site"].lower()]
    rows.sort(key=lambda row: int(row[order]), reverse=True)
    page = rows[offset : offset + limit]
    if first(params, "format").lower() == "csv":
        body = key_sites_csv(key, month, page, limit=limit, offset=offset, total=len(rows))
        return Response(body, status=200, mimetype="text/csv")
    return jsonify({month: page, "limit": limit, "offset": offset, "total": len(rows)})


# Akismet documents these under 1.2; some clients build every URL from one version, so 1.1 works too.
for _version in ("1.1", "1.2"):
    _route(f"/{_version}/usage-limit", ("GET", "POST"))(usage_limit)
    _route(f"/{_version}/key-sites", ("GET", "POST"))(key_sites)
