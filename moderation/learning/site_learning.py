"""Per-site learning, safely: how much each stored label may teach, and each site's own correction.

Two uses of a site's labels:

- **The global model** learns from every site, but no site can dominate it. A stored label's weight is
  its source's weight (`RETRAIN_SOURCE_WEIGHTS`: a moderator's decision counts more than a site's
  feedback or an Akismet submit-spam/ham report) times a per-site, per-day cap: one site's labels of one
  day add at most `RETRAIN_SITE_DAILY_CAP` to the total weight, however many it sends. Repeats of the
  same text with the same label from the same site count once, even with counters, punctuation or
  case changed (`skeleton`). And a phrase moves the global model only when at least two sites gave it
  the same label: a label's weight is scaled by the share of its word trigrams another site confirmed
  (`PhraseSites`), so a label no other site confirms stays out of the global model. A key flooding
  submit-spam with a common ham phrase therefore cannot move the global model at all; a single-site
  installation adapts through its own model (tests/test_site_learning.py checks 1,000 reports).
- **The site's own model** (`site_model.SiteAdjustment`: a correction of the global log-odds blended
  with a model learned from the site's labels alone, the blend chosen by cross-validation within those
  labels): fitted on that site's latest `SITE_MAX_LABELS` labels, uncapped, once it has
  `SITE_MIN_LABELS`, and applied only to that site's comments. A site can teach its own filter anything,
  quickly (`retrain --sites-only` refits only these), and nobody else's.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
from sqlalchemy import case, func, select, type_coerce
from sqlalchemy.orm import Session

from moderation.comment import SENDER_FIELDS, Comment, Label
from moderation.core.classifier import SpamModel
from moderation.core.similar import shingles
from moderation.core.site_model import SiteAdjustment, fit_site_adjustment
from moderation.errors import ConfigError
from moderation.store.schema import CommentRecord, LabelRecord, UTCDateTime

DEFAULT_SOURCE_WEIGHTS = {"moderator": 1.0, "feedback": 0.5, "akismet": 0.5}


_NOT_LETTERS = re.compile(r"[\W\d_]+")


def skeleton(text: str) -> str:
    """A comment's letters only, lowercased: "Thanks for sharing 17!" and "thanks, for sharing 18" agree.

    Repeats of one text with counters, punctuation or case changed are the cheapest way to flood the
    reports; they count once per site and label.
    """
    letters = _NOT_LETTERS.sub("", text.lower())
    return hashlib.sha1(letters.encode("utf-8", "surrogatepass"), usedforsecurity=False).hexdigest()


# A phrase is a word trigram (letters only, lowercased). A stored label teaches the global model only as
# far as its phrases were also given the same label by another site (its own site's model learns it fully):
# a learned vocabulary gives a phrase only one site ever used its own columns, and with nothing in the
# corpora to hold them back even a tiny total weight of reports makes that phrase spam for everyone.
PHRASE_SLOTS = 2**20  # hashed phrase table size: two int32 arrays, 8 MB, however many labels


def phrases(text: str) -> frozenset[int]:
    """Hashed word trigrams of `text` (uni- and bigrams for texts under three words): `similar.shingles`."""
    return shingles(text)


class PhraseSites:
    """Which phrases more than one site labelled the same way: fixed memory, filled in one streamed pass."""

    def __init__(self, slots: int = PHRASE_SLOTS) -> None:
        self.slots = slots
        self.first = np.zeros((2, slots), dtype=np.int32)  # per label: first site seen in the slot (0: none)
        self.shared = np.zeros((2, slots), dtype=bool)  # per label: a second site was seen too

    def _slots(self, text: str) -> list[int]:
        return [h % self.slots for h in phrases(text)]

    def add(self, site_id: int, label: Label, text: str) -> None:
        """Record that `site_id` gave `label` to a comment with `text`."""
        row = 1 if label is Label.SPAM else 0
        for slot in self._slots(text):
            first = self.first[row, slot]
            if first == 0:
                self.first[row, slot] = site_id
            elif first != site_id:
                self.shared[row, slot] = True

    def agreement(self, label: Label, text: str) -> float:
        """The share of `text`'s phrases another site also gave `label` (1.0 for a text without words)."""
        slots = self._slots(text)
        if not slots:
            return 1.0
        row = 1 if label is Label.SPAM else 0
        return float(self.shared[row, slots].mean())


def parse_source_weights(text: str) -> dict[str, float]:
    """Parse "moderator=1,feedback=0.5" into a dict; ConfigError naming the bad part otherwise."""
    weights: dict[str, float] = {}
    for part in (p.strip() for p in str(text).split(",")):
        if not part:
            continue
        name, sep, value = part.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError(part)
            weights[name.strip()] = float(value)
        except ValueError as exc:
            raise ConfigError(f"RETRAIN_SOURCE_WEIGHTS: expected source=weight pairs, found {part!r}") from exc
        if weights[name.strip()] < 0:
            raise ConfigError(f"RETRAIN_SOURCE_WEIGHTS: weights must be >= 0, found {part!r}")
    return weights


@dataclass(frozen=True, slots=True)
class StoredLabel:
    """A stored comment with its latest label, as read for training."""

    label_id: int
    comment_id: int
    site_id: int
    comment: Comment
    label: Label
    source: str
    labelled_at: datetime
    content_hash: str


# The Comment fields besides content that the query reads, in its column order (the text ones first).
_COMMENT_COLUMNS = (*SENDER_FIELDS, "language", "rendered_at", "submitted_at")


def latest_labels_query() -> Any:
    """Comments with their latest label (by label id), never test checks, oldest label first."""
    latest = select(func.max(LabelRecord.id).label("label_id")).group_by(LabelRecord.comment_id).subquery()
    return (
        select(
            LabelRecord.id,
            LabelRecord.label,
            LabelRecord.source,
            LabelRecord.created_at,
            CommentRecord.id,
            CommentRecord.site_id,
            CommentRecord.content,
            CommentRecord.content_hash,
            *(getattr(CommentRecord, name) for name in _COMMENT_COLUMNS),
            CommentRecord.extra,
        )
        .join(latest, latest.c.label_id == LabelRecord.id)
        .join(CommentRecord, CommentRecord.id == LabelRecord.comment_id)
        .where(CommentRecord.is_test.is_(False))
        .order_by(LabelRecord.id)
    )


def _stored(row: Any) -> StoredLabel:
    (label_id, label, source, at, comment_id, site_id, content, content_hash, *fields, extra) = row
    values = dict(zip(_COMMENT_COLUMNS, fields, strict=True))
    for name in _COMMENT_COLUMNS[:-2]:
        if values[name] is None and name != "user_agent":
            values[name] = ""
    return StoredLabel(
        label_id=int(label_id),
        comment_id=int(comment_id),
        site_id=int(site_id),
        comment=Comment(content=content or "", page_context=stored_page_context(extra), **values),
        label=Label(label),
        source=str(source),
        labelled_at=at,
        content_hash=str(content_hash or ""),
    )


def stored_page_context(extra: Any) -> tuple[str, ...]:
    """The page context a check stored in a comment's extra fields (`page_context`); () when it has none."""
    context = extra.get("page_context") if isinstance(extra, dict) else None
    if not isinstance(context, list):
        return ()
    return tuple(value for value in context if isinstance(value, str))


def stream_labels(session: Session, query: Any, batch_size: int = 2000) -> Iterator[list[StoredLabel]]:
    """Run `query` (from `latest_labels_query`) and yield its rows in lists of `batch_size`.

    `yield_per` makes PostgreSQL use a server-side cursor and SQLite step through the result, so only
    one batch of rows is in memory at a time.
    """
    result = session.execute(query.execution_options(yield_per=batch_size))
    for part in result.partitions(batch_size):
        yield [_stored(row) for row in part]


def daily_counts(session: Session) -> dict[tuple[int, str], int]:
    """How many latest labels each site has per daily-cap bucket (`cap_key`: UTC day, imports apart)."""
    query = latest_labels_query().subquery()
    column = query.c.created_at
    # PostgreSQL's date() uses the session time zone; SQLite stores UTC already (schema.UTCDateTime).
    day = func.date(func.timezone("UTC", column) if session.get_bind().dialect.name == "postgresql" else column)
    imported = case((query.c.source == IMPORT_SOURCE, 1), else_=0)
    stmt = select(query.c.site_id, day, imported, func.count()).group_by(query.c.site_id, day, imported)
    counts: dict[tuple[int, str], int] = {}
    for site, when, is_import, n in session.execute(stmt):
        key = (int(site), f"{when} {IMPORT_SOURCE}" if is_import else str(when))
        counts[key] = counts.get(key, 0) + int(n)
    return counts


IMPORT_SOURCE = "import"  # labels from a site's imported history (`moderation sites import`)


def cap_key(site_id: int, moment: datetime | date, source: str) -> tuple[int, str]:
    """The daily-cap bucket of a label: its site and UTC day, imported history in a bucket of its own.

    A site's imported years must neither fill the cap of the day its live labels came in on, nor be
    filled by them.
    """
    day = day_key(moment)
    return site_id, f"{day} {IMPORT_SOURCE}" if source == IMPORT_SOURCE else day


def day_key(moment: datetime | date) -> str:
    """The UTC day of a timestamp as the database's date() renders it (YYYY-MM-DD)."""
    return moment.strftime("%Y-%m-%d")


def label_weight(
    stored: StoredLabel,
    counts: Mapping[tuple[int, str], int],
    *,
    source_weights: Mapping[str, float],
    daily_cap: float,
    sites: PhraseSites | None = None,
) -> float:
    """The training weight of one stored label in the global model.

    Source weight × the site's daily cap share × (with `sites`) the share of its phrases other sites
    confirmed (0 when none did: the label then teaches only its own site's model).
    """
    base = source_weights.get(stored.source, min(source_weights.values(), default=0.5))
    count = counts.get(cap_key(stored.site_id, stored.labelled_at, stored.source), 1)
    weight = base * min(1.0, daily_cap / max(count, 1))
    if sites is not None:
        weight *= sites.agreement(stored.label, stored.comment.content)
    return float(weight)


# A published model's record of the labels its site models saw: {"through": the highest label id read,
# "counts": {site id: label rows}} under this key of its manifest's data (see site_refit).
MARKS_KEY = "site_labels"


@dataclass(frozen=True)
class SiteLabels:
    """One site's labels now: how many (every label row, never test checks), and the oldest newer than a mark."""

    count: int
    newest_id: int
    oldest_new_at: datetime | None


def site_labels(session: Session, through: int) -> dict[int, SiteLabels]:
    """Every site's label count, newest label id and the time of its oldest label with id > `through`."""
    newer = case((LabelRecord.id > through, LabelRecord.created_at), else_=None)
    stmt = (
        select(
            CommentRecord.site_id,
            func.count(LabelRecord.id),
            func.max(LabelRecord.id),
            type_coerce(func.min(newer), UTCDateTime()),
        )
        .join(CommentRecord, CommentRecord.id == LabelRecord.comment_id)
        .where(CommentRecord.is_test.is_(False))
        .group_by(CommentRecord.site_id)
    )
    return {int(site): SiteLabels(int(n), int(newest), oldest) for site, n, newest, oldest in session.execute(stmt)}


def label_marks(session: Session) -> dict[str, Any]:
    """What a published model records: the highest label id and each site's label count, read now."""
    now = site_labels(session, through=0)
    return {
        "through": max((s.newest_id for s in now.values()), default=0),
        "counts": {str(site): s.count for site, s in now.items()},
    }


def site_label_counts(session: Session) -> dict[int, int]:
    """How many latest labels each site has."""
    query = latest_labels_query().subquery()
    stmt = select(query.c.site_id, func.count()).group_by(query.c.site_id)
    return {int(site): int(n) for site, n in session.execute(stmt)}


def site_examples(
    session: Session, site_id: int, *, limit: int, exclude: Collection[int] = ()
) -> list[StoredLabel]:
    """The latest `limit` labelled comments of one site, leaving out the labels whose id is in `exclude`."""
    query = latest_labels_query().where(CommentRecord.site_id == site_id)
    # Read past the excluded ones rather than binding every excluded id into the query.
    query = query.order_by(None).order_by(LabelRecord.id.desc()).limit(limit + len(exclude))
    found = (_stored(row) for row in session.execute(query))
    return [stored for stored in found if stored.label_id not in exclude][:limit]


def fit_site_adjustments(
    session: Session,
    model: SpamModel,
    *,
    min_labels: int,
    max_labels: int,
    source_weights: Mapping[str, float],
    exclude: Collection[int] = (),
    only: Collection[int] | None = None,
    progress: Any = None,
) -> dict[int, SiteAdjustment]:
    """Fit a correction for every site (or the `only` ones) with at least `min_labels` labels, both classes present.

    The labels whose id is in `exclude` (held out for a comparison) are left out. One site at a time, at
    most `max_labels` comments in memory. Returns site id → SiteAdjustment.
    """
    adjustments: dict[int, SiteAdjustment] = {}
    excluded = exclude if isinstance(exclude, (set, frozenset)) else frozenset(exclude)
    for site_id, count in sorted(site_label_counts(session).items()):
        if only is not None and site_id not in only:
            continue
        examples = site_examples(session, site_id, limit=max_labels, exclude=excluded) if count >= min_labels else []
        if len(examples) < min_labels:
            continue
        if len({e.label for e in examples}) < 2:
            continue  # one class only: nothing to separate, the bias alone would just shift every score
        # A site's own reports are authoritative for its own correction: full weight whatever the source.
        weights = [1.0] * len(examples)
        started = time.perf_counter()
        adjustment = fit_site_adjustment(model, [e.comment for e in examples], [e.label for e in examples], weights)
        adjustments[site_id] = adjustment
        if progress is not None:
            a, b, _ = adjustment.blend
            progress(
                f"  site {site_id}: model from {len(examples)} labels, blend {a:.2f}·anchored + {b:.2f}·own "
                f"({time.perf_counter() - started:.1f} s)"
            )
    return adjustments


__all__ = [
    "DEFAULT_SOURCE_WEIGHTS",
    "IMPORT_SOURCE",
    "MARKS_KEY",
    "PhraseSites",
    "SiteLabels",
    "StoredLabel",
    "cap_key",
    "daily_counts",
    "fit_site_adjustments",
    "label_marks",
    "label_weight",
    "latest_labels_query",
    "parse_source_weights",
    "phrases",
    "site_examples",
    "site_label_counts",
    "site_labels",
    "skeleton",
    "stored_page_context",
    "stream_labels",
]
