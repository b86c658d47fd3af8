"""Check one comment: rules + model + policy, then store it with its verdict before anyone answers.

A comment is never published unchecked and never dropped: without a model it is held; when the
database cannot store it, `StoreError` propagates and the API answers 503 (the site retries or holds).

Two entry points share the work: `check_comment` on an ORM session (it hands back a `CommentRecord`
the caller can label, e.g. Akismet's submit calls), and `check_and_store`, the JSON API's hot path. The
latter takes a connection of its own from the engine and runs precompiled statements on the driver's
cursor (see precompiled.py): no ORM session, no per-statement SQLAlchemy execution machinery. On
PostgreSQL it also stores the comment and its audit event in one statement in autocommit mode, so a
check costs two round trips (history counts, store) instead of six (ping, BEGIN, SELECT, two INSERTs,
COMMIT). The comment is committed, durably, before the statement returns, and so before we answer.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, TypedDict, Unpack, cast

from sqlalchemy import JSON, Dialect, Engine, String, Table, bindparam, insert, literal, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, make_transient_to_detached

from moderation.comment import Comment, Verdict
from moderation.errors import ConfigError, StoreError
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
    """How a comment came in, for `check_comment` and `check_and_store` (each key optional).

    source: "api" (the default) or "akismet". extra: other request fields; its "honeypot" value feeds
    the honeypot rule and is stored only as a flag. is_test: never used for training. anonymize_ip:
    store the IP address without its host part.
    """

    source: str
    extra: dict[str, Any] | None
    is_test: bool
    anonymize_ip: bool


def check_comment(
    session: Session, site: Site, comment: Comment, *, model: Any | None, **options: Unpack[CheckOptions]
) -> tuple[CommentRecord, Verdict]:
    """Decide on `comment` for `site`, store record + audit event and commit; returns both.

    `model` is a SpamModel or None (hold everything). Database failure → StoreError.
    """
    prepared = _prepare(comment, **options)
    settings = site_settings(site)
    try:
        connection = session.connection()
        hits = history_hits(
            connection, site.id, prepared.comment, settings, content_hash=prepared.content_hash, now=prepared.now
        )
        values, verdict = _decide(site.id, settings, prepared, hits, model)
        comment_id: int = connection.execute(_INSERT_COMMENT, values).scalar_one()
        connection.execute(_INSERT_AUDIT, _audit_event(comment_id, values, verdict))
        # The record is attached as an already-persistent object, so callers can label it and lazy-load labels.
        record = CommentRecord(id=comment_id, **values)
        make_transient_to_detached(record)
        session.add(record)
        session.commit()
    except SQLAlchemyError as exc:
        session.rollback()
        raise StoreError(f"could not store the checked comment: {type(exc).__name__}") from exc
    return record, verdict


def check_and_store(
    engine: Engine,
    site_id: int,
    settings: SiteSettings,
    comment: Comment,
    *,
    model: Any | None,
    **options: Unpack[CheckOptions],
) -> StoredCheck:
    """`check_comment` for the JSON API: a connection from `engine`, the site's already validated policy.

    Returns once the comment and its audit event are committed. Database failure → StoreError.
    """
    statements = _statements(engine.dialect)
    prepared = _prepare(comment, **options)
    history = statements.history(prepared.comment)
    with driver_connection(engine) as connection, _autocommit(engine, connection, on=statements.store_both is not None):
        cursor = connection.cursor()
        try:
            parameters = history_parameters(
                site_id, prepared.comment, settings, content_hash=prepared.content_hash, now=prepared.now
            )
            counts = tuple(history.execute(cursor, parameters).fetchone())
            hits = history_rule_hits(counts, settings)
            values, verdict = _decide(site_id, settings, prepared, hits, model)
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


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A comment as it will be checked and stored, with what the rules need besides it."""

    comment: Comment
    extra: dict[str, Any]
    honeypot: str
    content_hash: str
    now: datetime
    source: str
    is_test: bool


def _prepare(
    comment: Comment,
    *,
    source: str = "api",
    extra: dict[str, Any] | None = None,
    is_test: bool = False,
    anonymize_ip: bool = False,
) -> _Prepared:
    extra = dict(extra or {})
    honeypot = str(extra.pop("honeypot", "") or "")
    if honeypot:
        extra["honeypot_filled"] = True
    email = comment.author_email.strip().lower()
    if email != comment.author_email:
        comment = replace(comment, author_email=email)
    if anonymize_ip and comment.user_ip:
        comment = replace(comment, user_ip=anonymize(comment.user_ip))
    return _Prepared(comment, extra, honeypot, fingerprint(comment.content), datetime.now(UTC), source, is_test)


def _decide(
    site_id: int,
    settings: SiteSettings,
    prepared: _Prepared,
    history: list[RuleHit],
    model: Any | None,
) -> tuple[dict[str, Any], Verdict]:
    """Rules, model and policy: the column values of the comment row to store, and the verdict."""
    comment, now = prepared.comment, prepared.now
    hits = stateless_hits(comment, settings, honeypot=prepared.honeypot) + history
    # A model with per-site corrections (incremental.AdaptiveModel) scores with this site's one.
    site_scorer = getattr(model, "score_for_site", None)
    unscored = "no model loaded"
    try:
        score = site_scorer(comment, site_id) if site_scorer else model.score(comment) if model is not None else None
    except Exception:  # a model bug must not lose the comment: store it, held, and log the traceback
        log.exception("model %s failed to score a comment of site %s", getattr(model, "version", None), site_id)
        score, unscored = None, "the classifier failed on this comment"
    verdict = decide(score, hits, settings, getattr(model, "thresholds", None), unscored=unscored)
    values = dict(
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
        score=verdict.score if score is not None else None,
        reasons=list(verdict.reasons),
        rules=list(verdict.rules),
        model_version=verdict.model_version,
        status=verdict.decision.value,
        status_changed_at=now,
        purged_at=None,
    )
    return values, verdict


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
