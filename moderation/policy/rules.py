"""Rules applied beside the model, each with a reason in moderator words (see policy for precedence).

    honeypot        a hidden form field was filled                       → discard
    too_fast        submitted implausibly soon after the form rendered   → at least hold
    too_many_links  more links than the site allows                      → at least hold
    blocklist       WordPress "disallowed keys" semantics                → at least spam
    allowlist       the same matching, the other way                     → approve
    trusted         approved history from the same email                 → an unsure score approves
    duplicate       the same normalised text from many authors           → at least spam
    flood           a burst of comments from one IP                      → at least hold

Block and allow lists follow WordPress's `wp_check_comment_disallowed_list`: one entry per line, blank
lines ignored, each entry matched case-insensitively as a substring of the content, author name,
email, URL, IP address and user agent (so `192.168.1.` covers a range and `casino` also catches
`casinos`). We also match the normalised content, so look-alike letters do not slip past a word.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, Connection, Integer, Select, and_, bindparam, false, func, or_, select
from sqlalchemy.orm import Session

from moderation.comment import Comment, Decision
from moderation.policy.decision import RuleHit, SiteSettings
from moderation.store.schema import CommentRecord, UTCDateTime


def fingerprint(content: str) -> str:
    """SHA-256 of the normalised, case-folded text: equal for copies that differ only in obfuscation."""
    from moderation.core.text import normalize

    folded = " ".join(normalize(content).casefold().split())
    return hashlib.sha256(folded.encode("utf-8")).hexdigest()


def _fields(comment: Comment) -> list[tuple[str, str]]:
    from moderation.core.text import normalize

    return [
        ("content", comment.content),
        ("content", normalize(comment.content)),
        ("author name", comment.author_name),
        ("email", comment.author_email),
        ("URL", comment.author_url),
        ("IP address", comment.user_ip),
        ("user agent", comment.user_agent or ""),
    ]


def list_match(entries: tuple[str, ...], comment: Comment) -> tuple[str, str] | None:
    """The first (entry, field name) where an entry is a substring of a field, case-insensitively."""
    if not entries:
        return None
    haystacks = [(name, value.casefold()) for name, value in _fields(comment) if value]
    for entry in entries:
        needle = entry.casefold()
        for name, value in haystacks:
            if needle in value:
                return entry, name
    return None


def stateless_hits(comment: Comment, settings: SiteSettings, *, honeypot: str = "") -> list[RuleHit]:
    """The rules that need only the comment itself."""
    from moderation.core.text import extract_links

    hits: list[RuleHit] = []
    if settings.honeypot and honeypot.strip():
        hits.append(RuleHit("honeypot", "the hidden honeypot field was filled in, which only bots do", "discard"))
    seconds = comment.seconds_to_submit
    if seconds is not None and seconds < settings.min_seconds_to_submit:
        hits.append(
            RuleHit(
                "too_fast",
                f"submitted {max(seconds, 0):.1f} s after the form was shown"
                f" (under {settings.min_seconds_to_submit:g} s)",
                "floor",
                Decision.HOLD,
            )
        )
    links = len(extract_links(comment.content))
    if links > settings.max_links:
        hits.append(
            RuleHit("too_many_links", f"{links} links (this site holds more than {settings.max_links})", "floor")
        )
    blocked = list_match(settings.blocklist, comment)
    if blocked:
        hits.append(RuleHit("blocklist", f"the {blocked[1]} contains '{blocked[0]}' from the block list", "block"))
    allowed = list_match(settings.allowlist, comment)
    if allowed:
        hits.append(RuleHit("allowlist", f"the {allowed[1]} contains '{allowed[0]}' from the allow list", "allow"))
    return hits


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


def history_rule_hits(counts: tuple[Any, ...], settings: SiteSettings) -> list[RuleHit]:
    """The history rules that fire, given the row of counts `history_query` answered."""
    approved, flagged, other_authors, recent = (int(n or 0) for n in counts)

    hits: list[RuleHit] = []
    if settings.trusted_min_approved > 0 and approved >= settings.trusted_min_approved and not flagged:
        hits.append(
            RuleHit(
                "trusted", f"trusted commenter: at least {approved} earlier approved comments from this email", "trust"
            )
        )
    authors = other_authors + 1
    if settings.duplicate_authors > 1 and authors >= settings.duplicate_authors:
        hits.append(
            RuleHit(
                "duplicate",
                f"the same text came from at least {authors} different authors in {settings.duplicate_window_hours} h",
                "floor",
                Decision.SPAM,
            )
        )
    if settings.flood_max > 0 and recent >= settings.flood_max:
        hits.append(
            RuleHit(
                "flood",
                f"at least {recent + 1} comments from this IP address in {settings.flood_window_seconds} s",
                "floor",
            )
        )
    return hits


@lru_cache(maxsize=4)
def _history_query(has_email: bool, has_ip: bool) -> Select[Any]:
    """The counts behind the history rules, built once per shape (building SQL costs more than running it).

    Each count stops at its rule's threshold (a LIMIT inside the subquery): a spam run that repeats one
    text thousands of times, or a prolific commenter, must not make every later check scan all of it.
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
        count_upto(
            author_key.label("author_key"),
            and_(
                same_site,
                CommentRecord.content_hash == bindparam("content_hash"),
                CommentRecord.created_at >= bindparam("dup_since", type_=UTCDateTime()),
                author_key != bindparam("author"),
            ),
            "dup_cap",
            distinct_rows=True,
        ),
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
