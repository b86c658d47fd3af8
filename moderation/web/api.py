"""The JSON API (/api/v1) and the operations endpoints (/healthz, /readyz, /metrics).

Every error, whatever raised it, has one shape: `{"ok": false, "error": {"code": ..., "message": ...}}`.
Requests authenticate with `Authorization: Bearer <key>`, or with an HMAC-SHA256 signature over
`"<timestamp>.<body>"` using the site's signing secret (headers X-Moderation-Site,
X-Moderation-Timestamp, X-Moderation-Signature: sha256=<hex>) within a replay window. Requests that
write spend their site's rate budget, and failed authentications their address's (see `limits`).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import math
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Flask, Request, Response, current_app, jsonify, request
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException

from moderation.checking.check import check_and_store, site_settings
from moderation.comment import Comment, Label
from moderation.errors import StoreError
from moderation.policy.decision import SiteSettings
from moderation.store.db import ping
from moderation.store.labels import record_label
from moderation.store.schema import CommentRecord, Site
from moderation.store.sites import site_for_key
from moderation.web import metrics
from moderation.web.limits import Refusal, site_budget
from moderation.web.openapi import (
    EPOCH_RANGE,
    FIELD_LIMITS,
    PAGE_TAG_LIMIT,
    PAGE_TAGS_LIMIT,
    PAGE_TITLE_LIMIT,
    document,
)

log = logging.getLogger(__name__)

bp = Blueprint("api", __name__, url_prefix="/api/v1")
ops = Blueprint("ops", __name__)

# Signed requests older or newer than this are refused: long enough for clock drift, short for replays.
REPLAY_WINDOW_SECONDS = 300
# Seconds a client should wait before retrying after a 503 (database down, nothing stored).
RETRY_AFTER_SECONDS = 5
# Each worker remembers a key's site this long, sparing a query per request; revocations wait this long.
SITE_CACHE_SECONDS = 5.0
# Largest id a comment can have (PostgreSQL BIGINT); larger ids in a URL are simply not found.
MAX_ID = 2**63 - 1

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:(?P<second>\d{2})(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})?$")
# What decodes to a UTF-16 surrogate: a JSON escape (\ud800-\udfff, paired or not), or the three UTF-8-shaped
# bytes ED A0..BF xx, which UTF-8 forbids but Python's JSON decoder reads with `surrogatepass`.
_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")

STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


class ApiError(Exception):
    """An error answered in the API's JSON shape."""

    def __init__(self, status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code or STATUS_CODES.get(status, "error")
        self.message = message
        self.headers = headers or {}


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    """The one JSON error shape."""
    response = jsonify({"ok": False, "error": {"code": code, "message": message}})
    response.status_code = status
    response.headers.update(headers or {})
    return response


def _wants_json() -> bool:
    path = request.path
    return path.startswith("/api/") or path in ("/healthz", "/readyz", "/metrics")


# --- request parsing -------------------------------------------------------------------------------


def parse_timestamp(name: str, value: Any) -> datetime | None:
    """An RFC 3339 date-time (a missing offset means UTC) or epoch seconds → aware UTC datetime.

    None or "" → None; anything else → ApiError 400.
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ApiError(400, f"{name}: expected an ISO-8601 string or epoch seconds, found {type(value).__name__}")
    if isinstance(value, str):
        return _parse_datetime(name, value)
    if not math.isfinite(value) or not EPOCH_RANGE[0] <= value <= EPOCH_RANGE[1]:
        raise ApiError(400, f"{name}: expected epoch seconds between 2000 and 2100, found {value!r}")
    return datetime.fromtimestamp(value, UTC)


def _parse_datetime(name: str, text: str) -> datetime:
    match = _RFC3339.match(text)
    if match is None:
        shown = text if len(text) <= 40 else f"{text[:40]}…"
        raise ApiError(400, f"{name}: expected an ISO-8601 date-time like 2026-01-31T12:00:00Z, found {shown!r}")
    normal = text.upper()
    if match.group("second") == "60":  # a leap second: RFC 3339 allows it, datetime does not
        normal = normal[: match.start("second")] + "59" + normal[match.end("second") :]
    try:
        parsed = datetime.fromisoformat(normal)
    except ValueError as exc:
        raise ApiError(400, f"{name}: not a valid date-time: {exc}") from exc
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # year 1 or 9999 shifted past the calendar's edge: keep the wall-clock time
        return parsed.replace(tzinfo=UTC)


def parse_comment(data: Any) -> tuple[Comment, dict[str, Any], bool]:
    """Validate a check request body into (Comment, extra fields, is_test); ApiError 400 names the bad field."""
    if not isinstance(data, dict):
        raise ApiError(400, f"expected a JSON object, found {type(data).__name__}")
    values: dict[str, str] = {}
    for name, limit in FIELD_LIMITS.items():
        value = data.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise ApiError(400, f"{name}: expected a string, found {type(value).__name__}")
        if len(value) > limit:
            raise ApiError(400, f"{name}: expected at most {limit} characters, found {len(value)}")
        # NUL never means anything in a comment and PostgreSQL cannot store it in text: drop it.
        values[name] = value.replace("\x00", "")
    if not values.get("content", "").strip():
        raise ApiError(400, "content: required, a string with at least one visible character")
    ip = values.get("user_ip", "")
    if ip:
        try:
            values["user_ip"] = str(ipaddress.ip_address(ip))
        except ValueError as exc:
            raise ApiError(400, f"user_ip: expected an IPv4 or IPv6 address, found {ip!r}") from exc
    is_test = data.get("is_test", False)
    if not isinstance(is_test, bool):
        raise ApiError(400, f"is_test: expected true or false, found {type(is_test).__name__}")
    extra = {"honeypot": values.pop("honeypot")} if "honeypot" in values else {}
    comment = Comment(
        user_agent=values.pop("user_agent", None),
        rendered_at=parse_timestamp("rendered_at", data.get("rendered_at")),
        submitted_at=parse_timestamp("submitted_at", data.get("submitted_at")),
        page_context=parse_page_context(data.get("page_title"), data.get("page_tags")),
        **values,
    )
    return comment, extra, is_test


def parse_page_context(title: Any, tags: Any) -> tuple[str, ...]:
    """`page_title` (a string) and `page_tags` (a list of strings) as `Comment.page_context`, title first,
    blank values left out; None means absent. ApiError 400 names the field for a wrong type or length."""
    values = []
    if title is not None:
        if not isinstance(title, str) or len(title) > PAGE_TITLE_LIMIT:
            expected = f"a string of at most {PAGE_TITLE_LIMIT} characters"
            raise ApiError(400, f"page_title: expected {expected}, found {_shown(title)}")
        values.append(title)
    if tags is not None:
        if not isinstance(tags, list) or len(tags) > PAGE_TAGS_LIMIT:
            expected = f"a list of at most {PAGE_TAGS_LIMIT} strings"
            raise ApiError(400, f"page_tags: expected {expected}, found {_shown(tags)}")
        for tag in tags:
            if not isinstance(tag, str) or len(tag) > PAGE_TAG_LIMIT:
                raise ApiError(
                    400, f"page_tags: expected strings of at most {PAGE_TAG_LIMIT} characters, found {_shown(tag)}"
                )
        values.extend(tags)
    cleaned = (value.replace("\x00", "").strip() for value in values)
    return tuple(value for value in cleaned if value)


def _shown(value: Any) -> str:
    """A value's type, and its length when it has one, for an error message."""
    if isinstance(value, str | list):
        return f"a {type(value).__name__} of length {len(value)}"
    return type(value).__name__


def json_body() -> Any:
    """The request's JSON body, or ApiError 415 (not JSON) / 400 (malformed, nested too deeply, lone surrogates)."""
    if not request.is_json:
        raise ApiError(415, f"expected Content-Type application/json, found {request.mimetype or 'none'!r}")
    raw = request.get_data(cache=True)
    try:
        data = _decode_json(raw)
        # "\ud800" is a valid JSON escape but not Unicode: no database can store it (a 500 before this check).
        # Only a surrogate escape or surrogate bytes can produce one, so most bodies skip the re-encoding.
        if _SURROGATE.search(raw) or b"\x00" in raw[:4]:  # NULs up front: UTF-16/32, escapes unseen
            json.dumps(data, ensure_ascii=False).encode("utf-8")
    except RecursionError as exc:  # "[[[[..." within MAX_CONTENT_LENGTH exhausts the decoder's stack
        raise ApiError(400, "JSON body nested too deeply") from exc
    except UnicodeEncodeError as exc:
        raise ApiError(400, "JSON strings must be valid Unicode, found a lone surrogate (\\ud800-\\udfff)") from exc
    if data is None:
        raise ApiError(400, "malformed JSON body")
    return data


def _decode_json(raw: bytes) -> Any:
    """`raw` parsed as JSON, or None when it is not JSON (malformed, or text not in UTF-8/16/32).

    This is what `request.get_json(silent=True)` does, without its second Content-Type check and its
    Flask/Werkzeug indirections: json_body took 31.7 µs of CPU per check instead of 34.1 (timed inside
    3 × 3000 check requests through the WSGI app, interleaved with the old code; medians).
    """
    try:
        return json.loads(raw)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError, as get_json(silent=True) catches
        return None


# --- authentication --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Caller:
    """The site a request authenticated as: its id, its validated policy and the name of its rate budget."""

    site_id: int
    settings: SiteSettings
    budget: str

    @classmethod
    def of(cls, site: Site) -> Caller:
        return cls(site.id, site_settings(site), site_budget(site))


def authenticate(*, writes: bool) -> Caller:
    """The site calling, by Bearer key or signed body; a request that `writes` spends one unit of its budget.

    ApiError 401 (no credentials), 403 (bad ones) or 429 (the site's budget, or this address's budget
    of failed authentications, is used up).
    """
    limits = _state().limits
    address = request.remote_addr or ""
    refusal = limits.refused(address)
    if refusal is not None:
        raise _rate_limited(refusal, "too many failed authentications from this address")
    try:
        caller = _credentials()
    except ApiError:
        limits.failed(address)
        raise
    if writes:
        refusal = limits.spend(caller.budget, caller.settings.extra.get("rate_limit"))
        if refusal is not None:
            raise _rate_limited(refusal, "this site's rate limit is used up")
    return caller


def _rate_limited(refusal: Refusal, why: str) -> ApiError:
    message = f"rate limit exceeded: {why} ({refusal.limit}); retry in {refusal.retry_after} s"
    return ApiError(429, message, headers={"Retry-After": str(refusal.retry_after)})


def _credentials() -> Caller:
    """The site whose credentials the request carries. ApiError 401 (none) or 403 (unknown, revoked, bad)."""
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise ApiError(401, "expected 'Authorization: Bearer <api key>'", headers={"WWW-Authenticate": "Bearer"})
        caller = _cached_caller(key.strip())
        if caller is None:
            raise ApiError(403, "this API key is unknown or was revoked", code="invalid_key")
        return caller
    if "X-Moderation-Signature" in request.headers:
        with _state().sessions() as session:
            return Caller.of(_signed_site(session))
    raise ApiError(
        401,
        "missing credentials: send 'Authorization: Bearer <api key>' or a signed body",
        headers={"WWW-Authenticate": "Bearer"},
    )


def _cached_caller(key: str) -> Caller | None:
    """The key's site, remembered for SITE_CACHE_SECONDS per process (a revocation takes that long to apply).

    A hit costs no query and no re-validation of the site's policy.
    """
    state = _state()
    cache: dict[str, tuple[float, Caller | None]] = state.site_cache
    now = time.monotonic()
    hit = cache.get(key)
    if hit is not None and hit[0] > now:
        return hit[1]
    with state.sessions() as session:
        site = site_for_key(session, key)
        caller = Caller.of(site) if site is not None else None
    if len(cache) > 10_000:  # bound the memory a stream of random keys can take
        cache.clear()
    cache[key] = (now + SITE_CACHE_SECONDS, caller)
    return caller


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The X-Moderation-Signature value for `body` sent at `timestamp` (epoch seconds as text)."""
    digest = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def _signed_site(session: Session) -> Site:
    site_id = request.headers.get("X-Moderation-Site", "")
    timestamp = request.headers.get("X-Moderation-Timestamp", "")
    given = request.headers.get("X-Moderation-Signature", "")
    # isascii(): isdigit() also accepts "²", which int() refuses (a 500 before this check).
    numeric = site_id.isascii() and site_id.isdigit() and timestamp.isascii() and timestamp.isdigit()
    if not numeric or len(site_id) > 9 or len(timestamp) > 12:  # sites.id is INTEGER: 9 digits always fit
        raise ApiError(401, "signed requests need X-Moderation-Site and X-Moderation-Timestamp (integers)")
    if abs(time.time() - int(timestamp)) > REPLAY_WINDOW_SECONDS:
        raise ApiError(401, f"signature timestamp outside the {REPLAY_WINDOW_SECONDS} s window", code="stale_signature")
    site = session.get(Site, int(site_id))
    if site is None or site.revoked_at is not None or not site.signing_secret:
        raise ApiError(403, "signature does not match", code="invalid_signature")
    expected = signature(site.signing_secret, timestamp, request.get_data(cache=True))
    if not hmac.compare_digest(expected.encode("ascii"), given.encode("utf-8", "replace")):
        raise ApiError(403, "signature does not match", code="invalid_signature")
    return site


def _owned_comment(session: Session, caller: Caller, comment_id: int) -> CommentRecord:
    record = session.get(CommentRecord, comment_id) if comment_id <= MAX_ID else None
    if record is None or record.site_id != caller.site_id:  # another site's comment is "not found", not "forbidden"
        raise ApiError(404, f"no comment {comment_id} for this site")
    return record


def _comment_json(record: CommentRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "decision": record.decision,
        "status": record.status,
        "score": record.score,
        "reasons": record.reasons,
        "model_version": record.model_version,
        "created_at": record.created_at.isoformat(),
        "labels": [
            {"label": lab.label, "source": lab.source, "created_at": lab.created_at.isoformat()}
            for lab in record.labels
        ],
    }


def _state() -> Any:
    return current_app.extensions["moderation"]


# --- views -------------------------------------------------------------------------------------------


@bp.post("/comments/check")
def check() -> Response:
    """Check one comment: store it with its verdict, then answer the decision."""
    state = _state()
    caller = authenticate(writes=True)
    comment, extra, is_test = parse_comment(json_body())
    stored = check_and_store(
        state.engine,
        caller.site_id,
        caller.settings,
        comment,
        model=state.models.get(),
        source="api",
        extra=extra,
        is_test=is_test,
        anonymize_ip=state.settings["ANONYMIZE_IP"],
    )
    verdict = stored.verdict
    metrics.count_decision(verdict.decision.value, "api")
    state.checkpoints.note_commit()
    return jsonify(
        ok=True,
        id=stored.id,
        decision=verdict.decision.value,
        score=stored.values["score"],
        reasons=list(verdict.reasons),
        model_version=verdict.model_version,
    )


@bp.get("/comments/<int:comment_id>")
def show(comment_id: int) -> Response:
    """A comment's current status and label history, for the site that sent it."""
    caller = authenticate(writes=False)
    with _state().sessions() as session:
        record = _owned_comment(session, caller, comment_id)
        return jsonify(ok=True, **_comment_json(record))


@bp.post("/comments/<int:comment_id>/feedback")
def feedback(comment_id: int) -> Response:
    """A site's or reader's report that a comment is spam or ham."""
    caller = authenticate(writes=True)
    data = json_body()
    label = data.get("label") if isinstance(data, dict) else None
    if label not in ("spam", "ham"):
        raise ApiError(400, f"label: expected 'spam' or 'ham', found {label!r}")
    reporter = data.get("reporter", "")
    if not isinstance(reporter, str) or len(reporter) > 150:
        raise ApiError(400, "reporter: expected a string of at most 150 characters")
    reporter = reporter.replace("\x00", "")  # PostgreSQL cannot store NUL; it never means anything here
    with _state().sessions() as session:
        record = _owned_comment(session, caller, comment_id)
        actor = f"site:{caller.site_id}" + (f"/{reporter}" if reporter else "")
        record_label(session, record, Label(label), source="feedback", actor=actor)
        return jsonify(ok=True, id=record.id, status=record.status)


@bp.get("/openapi.json")
def openapi() -> Response:
    """The OpenAPI 3 document of this API."""
    return jsonify(document())


@ops.get("/healthz")
def healthz() -> Response:
    """The process answers (liveness)."""
    return jsonify(ok=True)


@ops.get("/readyz")
def readyz() -> Response:
    """Ready when a model is loaded and the database answers; otherwise 503 saying why."""
    state = _state()
    model_problem, db_problem = state.models.problem(), ping(state.engine)
    checks = {"model": getattr(state.models.get(), "version", None), "database": "ok" if db_problem is None else "down"}
    problems = [p for p in (model_problem, db_problem) if p]
    if problems:
        response = jsonify(ok=False, error={"code": "not_ready", "message": "; ".join(problems)}, checks=checks)
        response.status_code = 503
        return response
    return jsonify(ok=True, checks=checks)


@ops.get("/metrics")
def prometheus() -> Response:
    """Prometheus metrics; with MODERATION_METRICS_TOKEN set, only for `Authorization: Bearer <that token>`."""
    token = str(_state().settings["METRICS_TOKEN"])
    if token:
        _require_metrics_token(token)
    body, content_type = metrics.render()
    return Response(body, content_type=content_type)


def _require_metrics_token(token: str) -> None:
    """ApiError 401 unless the request carries `token` as a Bearer credential (failures count per address)."""
    limits = _state().limits
    address = request.remote_addr or ""
    refusal = limits.refused(address)
    if refusal is not None:
        raise _rate_limited(refusal, "too many failed authentications from this address")
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode("utf-8", "replace"), token.encode()):
        limits.failed(address)
        message = "expected 'Authorization: Bearer <MODERATION_METRICS_TOKEN>'"
        raise ApiError(401, message, headers={"WWW-Authenticate": "Bearer"})


# --- wiring --------------------------------------------------------------------------------------------


class TimedRequest(Request):
    """Flask's request, stamped with the time it was created: the start of the latency metric.

    Stamping here rather than in a before_request hook spares every request a hook call and a `g` write.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.started = time.perf_counter()
        super().__init__(*args, **kwargs)


def _record_metrics(response: Response) -> Response:
    seconds = time.perf_counter() - request.started  # type: ignore[attr-defined]  # a TimedRequest
    metrics.observe(request.endpoint or "unmatched", request.method, response.status_code, seconds)
    return response


def _handle_api_error(exc: ApiError) -> Response:
    return error_response(exc.status, exc.code, exc.message, exc.headers)


def _handle_http(exc: HTTPException) -> Response | HTTPException:
    if not _wants_json():
        return exc
    status = exc.code or 500
    headers = {k: v for k, v in exc.get_headers() if k.lower() in ("allow", "retry-after", "www-authenticate")}
    message = {
        404: "no such endpoint",
        405: f"method {request.method} not allowed here",
        413: f"request body larger than {current_app.config['MAX_CONTENT_LENGTH']} bytes",
    }.get(status, exc.description or exc.name)
    return error_response(status, STATUS_CODES.get(status, exc.name.lower().replace(" ", "_")), message, headers)


def _handle_store(exc: Exception) -> Response:
    log.error("database failure: %s", exc)
    return error_response(
        503,
        "unavailable",
        "the database is unavailable; nothing was stored, retry later",
        {"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def _handle_unexpected(exc: Exception) -> Any:
    if isinstance(exc, HTTPException):
        return _handle_http(exc)
    log.exception("unhandled error on %s %s", request.method, request.path)
    if not _wants_json():
        raise exc
    return error_response(500, "internal_error", "internal error; it was logged")


def init_app(app: Flask) -> None:
    """Register the API and ops blueprints, JSON error handlers and metrics timing (TimedRequest)."""
    app.register_blueprint(bp)
    app.register_blueprint(ops)
    app.request_class = TimedRequest
    app.after_request(_record_metrics)
    app.register_error_handler(ApiError, _handle_api_error)
    app.register_error_handler(HTTPException, _handle_http)
    app.register_error_handler(StoreError, _handle_store)
    app.register_error_handler(SQLAlchemyError, _handle_store)
    app.register_error_handler(Exception, _handle_unexpected)
