"""Check one comment: rules + model + policy, then store it with its verdict before anyone answers.

A comment is never published unchecked and never dropped: without a model it is held; when the
database cannot store it, `StoreError` propagates and the API answers 503 (the site retries or holds).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, make_transient_to_detached

from .comment import Comment, Verdict
from .errors import ConfigError, StoreError
from .policy import SiteSettings, decide
from .privacy import anonymize_ip as anonymize
from .rules import fingerprint, history_hits, stateless_hits
from .schema import AuditEvent, CommentRecord, Site

log = logging.getLogger(__name__)

# Built once: constructing a statement costs more than executing it on this hot path.
# Table-level (Core) inserts skip the ORM's bulk-insert machinery, about half the cost of a check's writes.
_COMMENTS = cast(Table, CommentRecord.__table__)
_INSERT_COMMENT = insert(_COMMENTS).returning(_COMMENTS.c.id)
_INSERT_AUDIT = insert(cast(Table, AuditEvent.__table__))


def site_settings(site: Site) -> SiteSettings:
    """The site's validated policy; a stored value that no longer validates falls back to defaults, loudly."""
    try:
        return SiteSettings.from_dict(site.settings)
    except ConfigError as exc:
        log.error("site %s has invalid settings, using defaults: %s", site.id, exc)
        return SiteSettings()


def check_comment(
    session: Session,
    site: Site,
    comment: Comment,
    *,
    model: Any | None,
    source: str = "api",
    extra: dict[str, Any] | None = None,
    is_test: bool = False,
    anonymize_ip: bool = False,
) -> tuple[CommentRecord, Verdict]:
    """Decide on `comment` for `site`, store record + audit event and commit; returns both.

    `model` is a SpamModel or None (hold everything). `extra` holds other request fields; its
    "honeypot" value feeds the honeypot rule and is stored only as a flag. Database failure → StoreError.
    """
    extra = dict(extra or {})
    honeypot = str(extra.pop("honeypot", "") or "")
    if honeypot:
        extra["honeypot_filled"] = True
    comment = replace(comment, author_email=comment.author_email.strip().lower())
    if anonymize_ip and comment.user_ip:
        comment = replace(comment, user_ip=anonymize(comment.user_ip))
    settings = site_settings(site)
    now = datetime.now(UTC)
    content_hash = fingerprint(comment.content)
    site_id = site.id
    try:
        hits = stateless_hits(comment, settings, honeypot=honeypot)
        hits += history_hits(session, site_id, comment, settings, content_hash=content_hash, now=now)
        # A model with per-site corrections (incremental.AdaptiveModel) scores with this site's one.
        site_scorer = getattr(model, "score_for_site", None)
        unscored = "no model loaded"
        try:
            score = (
                site_scorer(comment, site_id) if site_scorer else model.score(comment) if model is not None else None
            )
        except Exception:  # a model bug must not lose the comment: store it, held, and log the traceback
            log.exception("model %s failed to score a comment of site %s", getattr(model, "version", None), site_id)
            score, unscored = None, "the classifier failed on this comment"
        verdict = decide(score, hits, settings, getattr(model, "thresholds", None), unscored=unscored)
        values = dict(
            site_id=site_id,
            created_at=now,
            source=source,
            content=comment.content,
            content_hash=content_hash,
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
            extra=extra,
            is_test=is_test,
            decision=verdict.decision.value,
            score=verdict.score if score is not None else None,
            reasons=list(verdict.reasons),
            rules=list(verdict.rules),
            model_version=verdict.model_version,
            status=verdict.decision.value,
            status_changed_at=now,
            purged_at=None,
        )
        # Core inserts: on this hot path the ORM's unit of work costs more than the rows. The record is
        # then attached as an already-persistent object, so callers can label it and lazy-load its labels.
        connection = session.connection()
        comment_id = connection.execute(_INSERT_COMMENT, values).scalar_one()
        record = CommentRecord(id=comment_id, **values)
        make_transient_to_detached(record)
        session.add(record)
        connection.execute(
            _INSERT_AUDIT,
            {
                "at": now,
                "actor": f"site:{site_id}",
                "action": "comment.check",
                "site_id": site_id,
                "comment_id": record.id,
                "detail": {
                    "decision": verdict.decision.value,
                    "score": record.score,
                    "rules": list(verdict.rules),
                    "model_version": verdict.model_version,
                    "source": source,
                },
            },
        )
        session.commit()
    except SQLAlchemyError as exc:
        session.rollback()
        raise StoreError(f"could not store the checked comment: {type(exc).__name__}") from exc
    return record, verdict
