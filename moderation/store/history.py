"""The site's earlier comments as the history rules see them: one SELECT of bounded counts per check.

The counts feed `policy.rules.history_rule_hits` (trusted commenter, duplicates, flood); each count stops
at its rule's threshold, so a long spam run cannot make later checks slower.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, Connection, Integer, Select, and_, bindparam, false, func, or_, select
from sqlalchemy.orm import Session

from moderation.comment import Comment
from moderation.policy.decision import RuleHit, SiteSettings
from moderation.policy.rules import history_rule_hits
from moderation.store.schema import CommentRecord, UTCDateTime

# The duplicate rule looks for other authors among this many most recent copies of a text, newest first
# through the (site, text, time) index. Counting every copy in the window made each check of a one-author
# flood read the whole run so far: the cheapest spam to send was the dearest to check (docs/experiments.md:
# duplicate count over the most recent copies).
DUPLICATE_SCAN_ROWS = 50


def history_hits(
    db: Connection | Session,
    site_id: int,
    comment: Comment,
    settings: SiteSettings,
    *,
    content_hash: str,
    now: datetime,
) -> list[RuleHit]:
    """The rules that look at the site's earlier comments: trusted commenters, duplicates, floods.

    One round trip: each rule's count is a scalar subquery of a single SELECT (a check is latency-bound).
    `db` is a connection, or a session whose connection is used.
    """
    connection = db.connection() if isinstance(db, Session) else db
    counts = connection.execute(  # Core execution: the ORM layer adds nothing to a row of counts
        history_query(comment),
        history_parameters(site_id, comment, settings, content_hash=content_hash, now=now),
    ).one()
    return history_rule_hits(tuple(counts), settings)


def history_query(comment: Comment) -> Select[Any]:
    """The SELECT of the history counts for a comment of this shape (with or without email and IP)."""
    return _history_query(bool(comment.author_email.strip()), bool(comment.user_ip))


def history_parameters(
    site_id: int, comment: Comment, settings: SiteSettings, *, content_hash: str, now: datetime
) -> dict[str, Any]:
    """The parameters of `history_query(comment)`."""
    email = comment.author_email.strip().lower()
    return {
        "site_id": site_id,
        "email": email,
        "author": email or comment.author_name,
        "content_hash": content_hash,
        "dup_since": now - timedelta(hours=settings.duplicate_window_hours),
        "ip": comment.user_ip,
        "flood_since": now - timedelta(seconds=settings.flood_window_seconds),
        # counting past a rule's threshold changes nothing but the reason's wording
        "trust_cap": max(settings.trusted_min_approved, 1),
        "flag_cap": 1,
        "dup_cap": max(settings.duplicate_authors - 1, 1),  # other authors; this one makes the rest
        "flood_cap": max(settings.flood_max, 1),
    }


@lru_cache(maxsize=4)
def _history_query(has_email: bool, has_ip: bool) -> Select[Any]:
    """The counts behind the history rules, built once per shape (building SQL costs more than running it).

    Each count stops at its rule's threshold (a LIMIT inside the subquery): a spam run that repeats one
    text thousands of times, or a prolific commenter, must not make every later check scan all of it.
    The duplicate count also reads at most DUPLICATE_SCAN_ROWS copies, as the author's own copies never
    bring its count closer to the threshold.
    """
    same_site = CommentRecord.site_id == bindparam("site_id")
    author_key = func.coalesce(func.nullif(CommentRecord.author_email, ""), CommentRecord.author_name)
    by_email = and_(same_site, CommentRecord.author_email == bindparam("email"), CommentRecord.is_test.is_(False))
    never = false()  # a missing email or IP counts nothing, without a query

    def count_upto(column: Any, condition: ColumnElement[bool], cap: str, *, distinct_rows: bool = False) -> Any:
        rows = select(column).where(condition)
        if distinct_rows:
            rows = rows.distinct()
        bounded = rows.limit(bindparam(cap, type_=Integer)).subquery()
        return select(func.count()).select_from(bounded).scalar_subquery()

    return select(
        count_upto(
            CommentRecord.id, and_(by_email, CommentRecord.status == "approve") if has_email else never, "trust_cap"
        ),
        count_upto(
            CommentRecord.id,
            # two comparisons rather than IN: an IN list is re-rendered on every execution
            and_(by_email, or_(CommentRecord.status == "spam", CommentRecord.status == "discard"))
            if has_email
            else never,
            "flag_cap",
        ),
        _other_authors_among_recent_copies(same_site, author_key),
        count_upto(
            CommentRecord.id,
            and_(
                same_site,
                CommentRecord.user_ip == bindparam("ip"),
                CommentRecord.created_at >= bindparam("flood_since", type_=UTCDateTime()),
            )
            if has_ip
            else never,
            "flood_cap",
        ),
    )


def _other_authors_among_recent_copies(same_site: ColumnElement[bool], author_key: Any) -> Any:
    """How many authors other than this one sent the text among its DUPLICATE_SCAN_ROWS latest copies (at most dup_cap).

    Limited before the author filter: an author's own copies would otherwise be read and skipped one by one.
    """
    recent = (
        select(author_key.label("author_key"))
        .where(
            same_site,
            CommentRecord.content_hash == bindparam("content_hash"),
            CommentRecord.created_at >= bindparam("dup_since", type_=UTCDateTime()),
        )
        .order_by(CommentRecord.created_at.desc())
        .limit(DUPLICATE_SCAN_ROWS)
        .subquery()
    )
    others = (
        select(recent.c.author_key)
        .where(recent.c.author_key != bindparam("author"))
        .distinct()
        .limit(bindparam("dup_cap", type_=Integer))
        .subquery()
    )
    return select(func.count()).select_from(others).scalar_subquery()
