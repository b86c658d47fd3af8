"""The stats page: what came in, what we decided, how much work it left, how often people disagreed.

Figures are computed in the database per UTC day (`date()` works in SQLite and PostgreSQL alike), so the
page costs a few GROUP BY queries whatever the volume.

- Overturned: a moderator's label contradicts the automatic decision (spam/discard labelled ham, or
  approve labelled spam). Labels on held comments are reviews, not overturns.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from flask import render_template, request
from sqlalchemy import func, select
from sqlalchemy.orm import Session

import moderation.web.review.charts as charts
from moderation.store.schema import CommentRecord, LabelRecord, ModelVersion
from moderation.web.review.auth import login_required
from moderation.web.review.blueprint import bp, db

DECISIONS = ("approve", "hold", "spam", "discard")
PERIODS = (7, 30, 90)
HALF = 460  # viewBox width of the charts drawn two to a row, so their text stays readable


def _day(value: Any) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)[:10]


@dataclass
class Stats:
    """Everything on the stats page, as plain numbers per day."""

    days: list[str]
    by_decision: dict[str, list[int]]
    spam_rate: list[float | None]
    held: list[int]
    reviewed: list[int]
    overturned: list[int]
    overturn_rate: list[float | None]
    by_model: dict[str, list[int]]
    totals: dict[str, Any]
    queue_size: int
    oldest_held: datetime | None
    models: list[ModelVersion]


def compute(session: Session, days: int, *, today: date | None = None) -> Stats:
    """The stats for the `days` days up to `today` (UTC)."""
    today = today or datetime.now(UTC).date()
    first = today - timedelta(days=days - 1)
    since = datetime.combine(first, time.min, UTC)
    labels = [(first + timedelta(days=i)).isoformat() for i in range(days)]
    index = {d: i for i, d in enumerate(labels)}

    comment_day = func.date(CommentRecord.created_at)
    by_decision = {d: [0] * days for d in DECISIONS}
    by_model: dict[str, list[int]] = defaultdict(lambda: [0] * days)
    rows = session.execute(
        select(comment_day, CommentRecord.decision, CommentRecord.model_version, func.count())
        .where(CommentRecord.created_at >= since, CommentRecord.is_test.is_(False))
        .group_by(comment_day, CommentRecord.decision, CommentRecord.model_version)
    )
    for day, decision, version, count in rows:
        i = index.get(_day(day))
        if i is None:
            continue
        if decision in by_decision:
            by_decision[decision][i] += count
        by_model[version or "no model"][i] += count

    label_day = func.date(LabelRecord.created_at)
    reviewed, overturned = [0] * days, [0] * days
    label_rows = session.execute(
        select(label_day, LabelRecord.label, CommentRecord.decision, func.count())
        .join(CommentRecord, CommentRecord.id == LabelRecord.comment_id)
        .where(LabelRecord.created_at >= since, LabelRecord.source == "moderator")
        .group_by(label_day, LabelRecord.label, CommentRecord.decision)
    )
    for day, label, decision, count in label_rows:
        i = index.get(_day(day))
        if i is None:
            continue
        reviewed[i] += count
        if (label == "ham" and decision in ("spam", "discard")) or (label == "spam" and decision == "approve"):
            overturned[i] += count

    totals_per_day = [sum(by_decision[d][i] for d in DECISIONS) for i in range(days)]
    spam_rate = [
        (by_decision["spam"][i] + by_decision["discard"][i]) / n if n else None for i, n in enumerate(totals_per_day)
    ]
    overturn_rate = [o / r if r else None for o, r in zip(overturned, reviewed, strict=True)]
    total = sum(totals_per_day)
    spam_total = sum(by_decision["spam"]) + sum(by_decision["discard"])
    queue_size, oldest = session.execute(
        select(func.count(), func.min(CommentRecord.created_at)).where(CommentRecord.status == "hold")
    ).one()
    return Stats(
        days=labels,
        by_decision=by_decision,
        spam_rate=spam_rate,
        held=by_decision["hold"],
        reviewed=reviewed,
        overturned=overturned,
        overturn_rate=overturn_rate,
        by_model=dict(sorted(by_model.items())),
        totals={
            "comments": total,
            "spam_rate": spam_total / total if total else None,
            "held": sum(by_decision["hold"]),
            "reviewed": sum(reviewed),
            "overturned": sum(overturned),
            "overturn_rate": sum(overturned) / sum(reviewed) if sum(reviewed) else None,
        },
        queue_size=int(queue_size or 0),
        oldest_held=oldest.replace(tzinfo=UTC) if oldest is not None and oldest.tzinfo is None else oldest,
        models=list(session.scalars(select(ModelVersion).order_by(ModelVersion.created_at.desc()).limit(20))),
    )


@bp.get("/stats")
@login_required
def stats() -> str:
    """Charts of volume by decision, spam rate, workload, overturns and model versions."""
    days = request.args.get("days", type=int) or 30
    days = days if days in PERIODS else 30
    figures = compute(db(), days)
    model_names = list(figures.by_model)
    model_classes = {name: f"model{i}" for i, name in enumerate(model_names)}
    chart = {
        "volume": charts.stacked_bars("Comments per day by automatic decision", figures.days, figures.by_decision),
        "spam_rate": charts.lines(
            "Spam rate per day", figures.days, {"spam": figures.spam_rate}, percent=True, width=HALF
        ),
        "workload": charts.lines(
            "Held for review and reviewed per day",
            figures.days,
            {"hold": [float(v) for v in figures.held], "reviewed": [float(v) for v in figures.reviewed]},
            percent=False,
            width=HALF,
        ),
        "overturns": charts.lines(
            "Share of moderator reviews that overturned the automatic decision",
            figures.days,
            {"overturned": figures.overturn_rate},
            percent=True,
            width=HALF,
        ),
        "models": charts.stacked_bars(
            "Comments per day by model version",
            figures.days,
            {model_classes[name]: figures.by_model[name] for name in model_names},
            {css: name for name, css in model_classes.items()},
            width=HALF,
        ),
    }
    return render_template(
        "review/stats.html",
        s=figures,
        chart=chart,
        days=days,
        periods=PERIODS,
        model_classes=model_classes,
        now=datetime.now(UTC),
    )
