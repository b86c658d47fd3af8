"""What a moderator's decision does, and how it is undone. No Flask here: plain functions on a session.

approve → a "ham" label, spam → a "spam" label (both via `labels.record_label`, source "moderator",
so they feed retraining and the audit log records who, when, from what to what); delete → status
"deleted" without a label (the moderator says "get rid of it", not "this is spam"). Each change queues
a signed callback to the site when it has a callback URL.

Undo reverts the last action: the labels it added are removed (a mistaken click must not train the
model), the status goes back, the audit log keeps both steps, and the site is told again unless its
callback had not gone out yet (then it is cancelled).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from moderation.comment import Label
from moderation.store.labels import record_label, set_status
from moderation.store.schema import AuditEvent, CommentRecord, LabelRecord, WebhookDelivery
from moderation.web import webhooks

ACTIONS = {"approve": "Approved", "spam": "Marked as spam", "delete": "Deleted"}
MAX_BULK = 200


@dataclass
class Outcome:
    """What one action did: enough to describe it and to undo it (stored in the login session)."""

    action: str
    previous: dict[int, str] = field(default_factory=dict)  # comment id → status before
    label_ids: list[int] = field(default_factory=list)
    delivery_ids: list[int] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.previous)

    def to_session(self) -> dict[str, Any]:
        """A JSON-safe form for the session cookie (which is signed, so it cannot be forged)."""
        return {
            "action": self.action,
            "previous": {str(k): v for k, v in self.previous.items()},
            "label_ids": self.label_ids,
            "delivery_ids": self.delivery_ids,
        }

    @classmethod
    def from_session(cls, data: dict[str, Any]) -> Outcome:
        """The inverse of `to_session`."""
        return cls(
            action=str(data["action"]),
            previous={int(k): str(v) for k, v in data["previous"].items()},
            label_ids=[int(i) for i in data.get("label_ids", [])],
            delivery_ids=[int(i) for i in data.get("delivery_ids", [])],
        )


def decide(session: Session, comment_ids: Sequence[int], action: str, *, actor: str) -> Outcome:
    """Apply `action` ("approve", "spam" or "delete") to the comments; unknown action → ValueError."""
    if action not in ACTIONS:
        raise ValueError(f"action: expected one of {', '.join(ACTIONS)}, found {action!r}")
    outcome = Outcome(action)
    wanted = list(dict.fromkeys(comment_ids))[:MAX_BULK]
    comments = session.scalars(select(CommentRecord).where(CommentRecord.id.in_(wanted))).all()
    for comment in sorted(comments, key=lambda c: wanted.index(c.id)):
        outcome.previous[comment.id] = comment.status
        if action == "delete":
            set_status(session, comment, "deleted", actor=actor)
        else:
            label = Label.HAM if action == "approve" else Label.SPAM
            outcome.label_ids.append(record_label(session, comment, label, source="moderator", actor=actor).id)
        delivery = webhooks.enqueue(session, comment, actor=actor)
        if delivery is not None:
            session.commit()
            outcome.delivery_ids.append(delivery.id)
    return outcome


def undo(session: Session, outcome: Outcome, *, actor: str) -> int:
    """Revert `outcome`; returns how many comments went back. Callbacks are cancelled or re-sent."""
    for label in session.scalars(select(LabelRecord).where(LabelRecord.id.in_(outcome.label_ids))):
        session.delete(label)
    cancelled: set[int] = set()
    for delivery in session.scalars(select(WebhookDelivery).where(WebhookDelivery.id.in_(outcome.delivery_ids))):
        if delivery.status == "pending" and delivery.attempts == 0:
            delivery.status = "cancelled"
            delivery.last_error = f"undone by {actor} before it was sent"
            cancelled.add(delivery.comment_id)
    session.commit()
    restored = 0
    for comment_id, status in outcome.previous.items():
        comment = session.get(CommentRecord, comment_id)
        if comment is None:
            continue
        session.add(
            AuditEvent(
                actor=actor,
                action="comment.undo",
                site_id=comment.site_id,
                comment_id=comment.id,
                detail={"undone": outcome.action, "from": comment.status, "to": status},
            )
        )
        set_status(session, comment, status, actor=actor)
        restored += 1
        if comment_id not in cancelled and webhooks.enqueue(session, comment, actor=actor) is not None:
            session.commit()
    return restored
