"""The queue and search as SQLAlchemy queries built from a page's filter form (plain data in, rows out)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session, selectinload

from moderation.store.schema import CommentRecord

STATUSES = ("approve", "hold", "spam", "discard", "deleted")
DECISIONS = ("approve", "hold", "spam", "discard")
SORTS = {"oldest": "Oldest first", "riskiest": "Riskiest first", "newest": "Newest first"}
PAGE_SIZE = 50


def _day(raw: str | None) -> date | None:
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


def _int(raw: str | None) -> int | None:
    try:
        value = int(raw) if raw else None
    except ValueError:
        return None
    # Beyond INTEGER (sites.id) a filter or page number overflows the database driver (a 500/503 before this).
    return value if value is not None and abs(value) <= 2**31 - 1 else None


class FilterError(ValueError):
    """A filter value that parses but cannot be searched for (the views answer 400 with its message)."""


@dataclass(frozen=True)
class Filters:
    """What a queue or search page was asked for; every field optional, bad values ignored."""

    q: str = ""
    site: int | None = None
    status: str = ""
    decision: str = ""
    since: date | None = None
    until: date | None = None
    sort: str = "oldest"
    page: int = 1

    @classmethod
    def from_args(cls, args: Mapping[str, str], *, default_sort: str = "oldest") -> Filters:
        """Read the filters from query-string arguments; FilterError for an `until` the calendar cannot end."""
        status = args.get("status", "")
        until = _day(args.get("until"))
        if until == date.max:  # "up to the end of that day" would need the day after, which datetime lacks
            raise FilterError(f"until: expected a date before {date.max.isoformat()}, found {until.isoformat()}")
        decision = args.get("decision", "")
        sort = args.get("sort", default_sort)
        return cls(
            q=args.get("q", "").strip()[:200],
            site=_int(args.get("site")),
            status=status if status in STATUSES else "",
            decision=decision if decision in DECISIONS else "",
            since=_day(args.get("since")),
            until=until,
            sort=sort if sort in SORTS else default_sort,
            page=max(1, _int(args.get("page")) or 1),
        )

    def args(self, **changes: object) -> dict[str, object]:
        """Query-string arguments reproducing these filters, with `changes` applied (for links)."""
        values: dict[str, object] = {
            "q": self.q,
            "site": self.site,
            "status": self.status,
            "decision": self.decision,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "sort": self.sort,
            "page": self.page if self.page > 1 else None,
        }
        values.update(changes)
        return {k: v for k, v in values.items() if v not in (None, "")}


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def build(filters: Filters, *, status: str | None = None) -> Select[Any]:
    """The query for `filters`; `status` (e.g. "hold" for the queue) overrides the filter's."""
    query = select(CommentRecord).options(selectinload(CommentRecord.site))
    wanted_status = status if status is not None else filters.status
    if wanted_status:
        query = query.where(CommentRecord.status == wanted_status)
    if filters.site is not None:
        query = query.where(CommentRecord.site_id == filters.site)
    if filters.decision:
        query = query.where(CommentRecord.decision == filters.decision)
    if filters.since is not None:
        query = query.where(CommentRecord.created_at >= datetime.combine(filters.since, time.min, UTC))
    if filters.until is not None:
        until = datetime.combine(filters.until + timedelta(days=1), time.min, UTC)
        query = query.where(CommentRecord.created_at < until)
    if filters.q:
        # An id search only for ids a row can have: "²" (isdigit, not int) and ids past BIGINT were 500s.
        if filters.q.isascii() and filters.q.isdigit() and len(filters.q) < 20 and int(filters.q) < 2**63:
            query = query.where(CommentRecord.id == int(filters.q))
        else:
            pattern = f"%{_escape_like(filters.q.lower())}%"
            query = query.where(
                or_(
                    *(
                        func.lower(column).like(pattern, escape="\\")
                        for column in (
                            CommentRecord.content,
                            CommentRecord.author_name,
                            CommentRecord.author_email,
                            CommentRecord.author_url,
                            CommentRecord.user_ip,
                        )
                    )
                )
            )
    if filters.sort == "riskiest":
        query = query.order_by(CommentRecord.score.desc().nulls_last(), CommentRecord.created_at, CommentRecord.id)
    elif filters.sort == "newest":
        query = query.order_by(CommentRecord.created_at.desc(), CommentRecord.id.desc())
    else:
        query = query.order_by(CommentRecord.created_at, CommentRecord.id)
    return query


@dataclass
class Page:
    """One page of results and how many there are in all."""

    items: list[CommentRecord]
    total: int
    page: int
    size: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))


def fetch(session: Session, filters: Filters, *, status: str | None = None, size: int = PAGE_SIZE) -> Page:
    """Run `build` for one page and count the whole result."""
    query = build(filters, status=status)
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    items: list[CommentRecord] = list(session.scalars(query.limit(size).offset((filters.page - 1) * size)))
    return Page(items, int(total), filters.page, size)


# How far back "mark all similar" looks: a campaign's copies still waiting in the queue or already published.
SIMILAR_LOOKBACK = timedelta(days=30)
SIMILAR_CANDIDATES = 5000


def open_comments(session: Session, site_ids: set[int], exclude: set[int]) -> list[tuple[int, str]]:
    """(id, text) of the sites' comments still held or approved, newest first, within SIMILAR_LOOKBACK."""
    since = datetime.now(UTC) - SIMILAR_LOOKBACK
    query = (
        select(CommentRecord.id, CommentRecord.content)
        .where(
            CommentRecord.site_id.in_(site_ids),
            CommentRecord.status.in_(("hold", "approve")),
            CommentRecord.created_at >= since,
        )
        .order_by(CommentRecord.id.desc())
        .limit(SIMILAR_CANDIDATES)
    )
    return [(int(i), str(text)) for i, text in session.execute(query) if int(i) not in exclude]
