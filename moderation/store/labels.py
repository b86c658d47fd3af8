"""Labels with their history, and status changes, each leaving an audit event.

The latest label wins: spam moves a comment to "spam", ham to "approve". Earlier labels stay, so one
can see who said what and when.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from moderation.comment import Label
from moderation.errors import StoreError
from moderation.store.schema import AuditEvent, CommentRecord, LabelRecord

STATUSES = ("approve", "hold", "spam", "discard", "deleted")
_STATUS_FOR_LABEL = {Label.SPAM: "spam", Label.HAM: "approve"}


def record_label(session: Session, comment: CommentRecord, label: Label, *, source: str, actor: str) -> LabelRecord:
    """Add `label` to `comment`'s history, move its status accordingly, audit, commit. DB failure → StoreError."""
    label = Label(label)
    now = datetime.now(UTC)
    record = LabelRecord(comment_id=comment.id, label=label.value, source=source, actor=actor, created_at=now)
    _move(
        session,
        comment,
        _STATUS_FOR_LABEL[label],
        now=now,
        actor=actor,
        action="comment.label",
        detail={"label": label.value, "source": source},
        adding=record,
        failure="store the label",
    )
    return record


def set_status(session: Session, comment: CommentRecord, status: str, *, actor: str) -> None:
    """Move `comment` to `status` (one of STATUSES), audit, commit. Unknown status → ValueError."""
    if status not in STATUSES:
        raise ValueError(f"status: expected one of {', '.join(STATUSES)}, found {status!r}")
    _move(
        session,
        comment,
        status,
        now=datetime.now(UTC),
        actor=actor,
        action="comment.status",
        detail={},
        failure="change the status",
    )


def _move(
    session: Session,
    comment: CommentRecord,
    status: str,
    *,
    now: datetime,
    actor: str,
    action: str,
    detail: dict[str, str],
    failure: str,
    adding: LabelRecord | None = None,
) -> None:
    """Add `adding` (if any), move `comment` to `status` with an audit event (`detail` + from/to), commit.

    Rolls back and raises StoreError("could not <failure>: ...") when the database refuses.
    """
    before = comment.status
    try:
        if adding is not None:
            session.add(adding)
        comment.status = status
        comment.status_changed_at = now
        session.add(
            AuditEvent(
                at=now,
                actor=actor,
                action=action,
                site_id=comment.site_id,
                comment_id=comment.id,
                detail={**detail, "from": before, "to": status},
            )
        )
        session.commit()
    except SQLAlchemyError as exc:
        session.rollback()
        raise StoreError(f"could not {failure}: {type(exc).__name__}") from exc


def current_label(comment: CommentRecord) -> str | None:
    """The latest label on `comment`, or None."""
    return comment.labels[-1].label if comment.labels else None
