"""Check one comment: rules + model + policy, then store it with its verdict before anyone answers.

    check_and_store(engine, site_id, settings, comment, model=...) -> StoredCheck   JSON API, Akismet, CLI --store
    recheck(comment, model=..., ...) -> Verdict                                    bulk re-check, read-only

Both run the same steps: `prepare_check` (the comment as it will be stored: email lower-cased, IP
anonymised when asked, the honeypot taken out of the extra fields and the page context put in, the
content's fingerprint), the
history counts from the store, `judge` (stateless rules + history rules + the model, for the site when
it has its own model, through the policy) and, for `check_and_store`, the row.

A comment is never published unchecked and never dropped: without a model it is held; when the
database cannot store it, `StoreError` propagates and the API answers 503 (the site retries or holds).
`check_and_store` takes a connection of its own from the engine and runs precompiled statements on the
driver's cursor (see store/precompiled.py). On PostgreSQL it stores the comment and its audit event in
one statement in autocommit mode, so a check costs two round trips (history counts, store). The comment
is committed, durably, before the statement returns, and so before we answer.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, TypedDict, Unpack, cast

from sqlalchemy import JSON, Connection, Dialect, Engine, String, Table, bindparam, insert, literal, select

from moderation.comment import Comment, Verdict
from moderation.core.classifier import Scorer
from moderation.errors import ConfigError
from moderation.policy.decision import RuleHit, SiteSettings, decide
from moderation.policy.rules import fingerprint, history_rule_hits, stateless_hits
from moderation.store.db import sqlite_write_lock
from moderation.store.history import history_hits, history_parameters, history_query
from moderation.store.precompiled import Precompiled, driver_connection
from moderation.store.privacy import anonymize_ip as anonymize
from moderation.store.schema import AuditEvent, CommentRecord, Site, UTCDateTime

log = logging.getLogger(__name__)

# Built once: constructing a statement costs more than executing it on this hot path.
# Table-level (Core) inserts skip the ORM's bulk-insert machinery, about half the cost of a check's writes.
_COMMENTS = cast(Table, CommentRecord.__table__)
_INSERT_COMMENT = insert(_COMMENTS).returning(_COMMENTS.c.id)
_AUDIT = cast(Table, AuditEvent.__table__)
_INSERT_AUDIT = insert(_AUDIT)
# The comment columns a check fills (every one but the generated id), in the order `_row` builds them.
_ROW_COLUMNS = tuple(column.name for column in _COMMENTS.columns if column.name != "id")


@dataclass(frozen=True, slots=True)
class StoredCheck:
    """A checked comment as stored: its id, the stored column values and the verdict."""

    id: int
    values: dict[str, Any]
    verdict: Verdict


def site_settings(site: Site) -> SiteSettings:
    """The site's validated policy; a stored value that no longer validates falls back to defaults, loudly."""
    try:
        return SiteSettings.from_dict(site.settings)
    except ConfigError as exc:
        log.error("site %s has invalid settings, using defaults: %s", site.id, exc)
        return SiteSettings()


class CheckOptions(TypedDict, total=False):
    """How a comment came in, for `check_and_store` (each key optional).

    source: "api" (the default) or "akismet". extra: other request fields; its "honeypot" value feeds
    the honeypot rule and is stored only as a flag. is_test: never used for training. anonymize_ip:
    store the IP address without its host part.
    """

    source: str
    extra: dict[str, Any] | None
    is_test: bool
    anonymize_ip: bool


def check_and_store(
    engine: Engine,
    site_id: int,
    settings: SiteSettings,
    comment: Comment,
    *,
    model: Scorer | None,
    **options: Unpack[CheckOptions],
) -> StoredCheck:
    """Check `comment` for `site_id` under its already validated policy and store it with its verdict.

    Returns once the comment and its audit event are committed. Database failure → StoreError.
    """
    statements = _statements(engine.dialect)
    prepared = prepare_check(comment, **options)
    history = statements.history(prepared.comment)
    with driver_connection(engine) as connection, _autocommit(engine, connection, on=statements.store_both is not None):
        cursor = connection.cursor()
        try:
            parameters = history_parameters(
                site_id, prepared.comment, settings, content_hash=prepared.content_hash, now=prepared.now
            )
            counts = tuple(history.execute(cursor, parameters).fetchone())
            verdict = judge(prepared, site_id, settings, history_rule_hits(counts, settings), model)
            values = comment_row(site_id, prepared, verdict)
            if statements.store_both is not None:
                audit = _audit_event(0, values, verdict)
                both = {**values, "actor": audit["actor"], "detail": audit["detail"]}
                comment_id = int(statements.store_both.execute(cursor, both).fetchone()[0])
            else:
                with sqlite_write_lock(engine):
                    comment_id = int(statements.insert_comment.execute(cursor, values).fetchone()[0])
                    statements.insert_audit.execute(cursor, _audit_event(comment_id, values, verdict))
                    connection.commit()
        finally:
            cursor.close()
    return StoredCheck(comment_id, values, verdict)


def recheck(
    comment: Comment,
    *,
    model: Scorer | None,
    settings: SiteSettings | None = None,
    site_id: int | None = None,
    connection: Connection | None = None,
) -> Verdict:
    """The verdict `check_and_store` would give, storing nothing: with `site_id` and `connection`, the
    site's history and its own model count too; without them only the comment, the model and `settings`."""
    settings = settings or SiteSettings()
    prepared = prepare_check(comment)
    hits: list[RuleHit] = []
    if connection is not None and site_id is not None:
        hits = history_hits(
            connection, site_id, prepared.comment, settings, content_hash=prepared.content_hash, now=prepared.now
        )
    return judge(prepared, site_id, settings, hits, model)


@dataclass(frozen=True, slots=True)
class PreparedCheck:
    """A comment as it will be checked and stored, with what the rules need besides it."""

    comment: Comment
    extra: dict[str, Any]
    honeypot: str
    content_hash: str
    now: datetime
    source: str
    is_test: bool


def prepare_check(
    comment: Comment,
    *,
    source: str = "api",
    extra: dict[str, Any] | None = None,
    is_test: bool = False,
    anonymize_ip: bool = False,
) -> PreparedCheck:
    extra = dict(extra or {})
    honeypot = str(extra.pop("honeypot", "") or "")
    if honeypot:
        extra["honeypot_filled"] = True
    if comment.page_context:  # kept for the site's own model, which reads it back when refitting
        extra["page_context"] = list(comment.page_context)
    email = comment.author_email.strip().lower()
    if email != comment.author_email:
        comment = replace(comment, author_email=email)
    if anonymize_ip and comment.user_ip:
        comment = replace(comment, user_ip=anonymize(comment.user_ip))
    return PreparedCheck(comment, extra, honeypot, fingerprint(comment.content), datetime.now(UTC), source, is_test)


def judge(
    prepared: PreparedCheck,
    site_id: int | None,
    settings: SiteSettings,
    history: list[RuleHit],
    model: Scorer | None,
) -> Verdict:
    """Rules, model (with the site's own correction when it has one) and policy: the verdict."""
    hits = stateless_hits(prepared.comment, settings, honeypot=prepared.honeypot) + history
    if model is None:
        return decide(None, hits, settings, None, unscored="no model loaded")
    try:
        score = model.score_for_site(prepared.comment, site_id)
    except Exception:  # a model bug must not lose the comment: store it, held, and log the traceback
        log.exception("model %s failed to score a comment of site %s", model.version, site_id)
        return decide(None, hits, settings, model.thresholds, unscored="the classifier failed on this comment")
    return decide(score, hits, settings, model.thresholds)


def comment_row(site_id: int, prepared: PreparedCheck, verdict: Verdict) -> dict[str, Any]:
    """The column values of the comment row that stores `prepared` with its verdict."""
    comment, now = prepared.comment, prepared.now
    return dict(
        site_id=site_id,
        created_at=now,
        source=prepared.source,
        content=comment.content,
        content_hash=prepared.content_hash,
        author_name=comment.author_name,
        author_email=comment.author_email,
        author_url=comment.author_url,
        user_ip=comment.user_ip,
        user_agent=comment.user_agent,
        referrer=comment.referrer,
        permalink=comment.permalink,
        comment_type=comment.comment_type,
        language=comment.language,
        rendered_at=comment.rendered_at,
        submitted_at=comment.submitted_at,
        extra=prepared.extra,
        is_test=prepared.is_test,
        decision=verdict.decision.value,
        score=verdict.score if verdict.model_version is not None else None,
        reasons=list(verdict.reasons),
        rules=list(verdict.rules),
        model_version=verdict.model_version,
        status=verdict.decision.value,
        status_changed_at=now,
        purged_at=None,
    )


def _audit_event(comment_id: int, values: dict[str, Any], verdict: Verdict) -> dict[str, Any]:
    """The audit row of a check."""
    return {
        "at": values["created_at"],
        "actor": f"site:{values['site_id']}",
        "action": "comment.check",
        "site_id": values["site_id"],
        "comment_id": comment_id,
        "detail": {
            "decision": verdict.decision.value,
            "score": values["score"],
            "rules": list(verdict.rules),
            "model_version": verdict.model_version,
            "source": values["source"],
        },
    }


@dataclass(frozen=True)
class _Statements:
    """The hot path's statements, compiled for one database."""

    dialect: Dialect
    insert_comment: Precompiled
    insert_audit: Precompiled
    store_both: Precompiled | None  # both rows in one statement, where the database can (PostgreSQL)

    def history(self, comment: Comment) -> Precompiled:
        return _precompiled_history(self.dialect, history_query(comment))


@lru_cache(maxsize=8)
def _statements(dialect: Dialect) -> _Statements:
    return _Statements(
        dialect,
        Precompiled(_INSERT_COMMENT, dialect, column_keys=_ROW_COLUMNS),
        Precompiled(_INSERT_AUDIT, dialect, column_keys=("at", "actor", "action", "site_id", "comment_id", "detail")),
        Precompiled(_store_both_statement(), dialect) if dialect.name == "postgresql" else None,
    )


@lru_cache(maxsize=32)
def _precompiled_history(dialect: Dialect, query: Any) -> Precompiled:
    return Precompiled(query, dialect)


def _store_both_statement() -> Any:
    """INSERT the comment and, in the same statement, its audit event (a data-modifying CTE, PostgreSQL)."""
    row = (
        insert(_COMMENTS)
        .values({name: bindparam(name, type_=_COMMENTS.c[name].type) for name in _ROW_COLUMNS})
        .returning(_COMMENTS.c.id)
        .cte("stored")
    )
    event = select(
        bindparam("created_at", type_=UTCDateTime()),
        bindparam("actor", type_=String()),
        literal("comment.check"),
        bindparam("site_id", type_=_AUDIT.c.site_id.type),
        row.c.id,
        bindparam("detail", type_=JSON()),
    )
    columns = ["at", "actor", "action", "site_id", "comment_id", "detail"]
    return insert(_AUDIT).from_select(columns, event).returning(_AUDIT.c.comment_id)


@contextmanager
def _autocommit(engine: Engine, connection: Any, *, on: bool) -> Iterator[None]:
    """With `on`, the DBAPI connection in autocommit mode for the block (each statement its own transaction)."""
    if not on:
        yield
        return
    engine.dialect.set_isolation_level(connection.dbapi_connection, "AUTOCOMMIT")
    try:
        yield
    finally:
        engine.dialect.reset_isolation_level(connection.dbapi_connection)
