"""Labels with their history, and status changes, each leaving an audit event.

The latest label wins: spam moves a comment to "spam", ham to "approve". Earlier labels stay, so one
can see who said what and when.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from .comment import Label
from .errors import StoreError
from .schema import AuditEvent, CommentRecord, LabelRecord

STATUSES = ("approve", "hold", "spam", "discard", "deleted")
_STATUS_FOR_LABEL = {Label.SPAM: "spam", Label.HAM: "approve"}


def record_label(session: Session, comment: CommentRecord, label: Label, *, source: str, actor: str) -> LabelRecord:
    """Add `label` to `comment`'s history, move its status accordingly, audit, commit. DB failure → StoreError."""
    label = Label(label)
    now = datetime.now(UTC)
    before = comment.status
    record = LabelRecord(comment_id=comment.id, label=label.value, source=source, actor=actor, created_at=now)
    try:
        session.add(record)
        comment.status = _STATUS_FOR_LABEL[label]
        comment.status_changed_at = now
        session.add(
            AuditEvent(
                at=now,
                actor=actor,
                action="comment.label",
                site_id=comment.site_id,
                comment_id=comment.id,
                detail={"label": label.value, "source": source, "from": before, "to": comment.status},
            )
        )
        session.commit()
    except SQLAlchemyError as exc:
        session.rollback()
        raise StoreError(f"could not store the label: {type(exc).__name__}") from exc
    return record


def set_status(session: Session, comment: CommentRecord, status: str, *, actor: str) -> None:
    """Move `comment` to `status` (one of STATUSES), audit, commit. Unknown status → ValueError."""
    if status not in STATUSES:
        raise ValueError(f"status: expected one of {', '.join(STATUSES)}, found {status!r}")
    before = comment.status
    now = datetime.now(UTC)
    try:
        comment.status = status
        comment.status_changed_at = now
        session.add(
            AuditEvent(
                at=now,
                actor=actor,
                action="comment.status",
                site_id=comment.site_id,
                comment_id=comment.id,
                detail={"from": before, "to": status},
            )
        )
        session.commit()
    except SQLAlchemyError as exc:
        session.rollback()
        raise StoreError(f"could not change the status: {type(exc).__name__}") from exc


def current_label(comment: CommentRecord) -> str | None:
    """The latest label on `comment`, or None."""
    return comment.labels[-1].label if comment.labels else None
