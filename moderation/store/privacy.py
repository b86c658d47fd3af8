"""Personal data: IP anonymisation, purging it past retention, and exporting one site's data.

Purging blanks the fields that identify a person (author name, email and URL, IP address, user agent,
referrer) and keeps the text, verdict and labels, which train the model and hold no more personal data
than the site published. `purge(..., delete=True)` removes the comments altogether.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.orm import Session

from moderation.errors import ConfigError
from moderation.store.schema import AuditEvent, CommentRecord, LabelRecord

_DURATION = re.compile(r"^\s*(\d+)\s*([dhw]?)\s*$")


def anonymize_ip(ip: str) -> str:
    """IPv4 with the last octet zeroed, IPv6 with the last 80 bits zeroed; other text returned blank."""
    try:
        address = ipaddress.ip_address(ip.strip())
    except ValueError:
        return ""
    prefix = 24 if address.version == 4 else 48
    network = ipaddress.ip_network(f"{address}/{prefix}", strict=False)
    return str(network.network_address)


def parse_age(text: str) -> timedelta:
    """'90d', '12h', '2w' or a bare number of days → timedelta; anything else → ConfigError."""
    match = _DURATION.match(text)
    if not match:
        raise ConfigError(f"expected an age like 90d, 12h or 2w, found {text!r}")
    amount, unit = int(match.group(1)), match.group(2) or "d"
    return {"d": timedelta(days=amount), "h": timedelta(hours=amount), "w": timedelta(weeks=amount)}[unit]


def purge(session: Session, older_than: timedelta, *, delete_rows: bool = False, actor: str = "cli") -> int:
    """Blank personal fields (or delete, with `delete_rows`) of comments older than `older_than`; commit; count."""
    cutoff = datetime.now(UTC) - older_than
    if delete_rows:
        ids = select(CommentRecord.id).where(CommentRecord.created_at < cutoff)
        session.execute(delete(LabelRecord).where(LabelRecord.comment_id.in_(ids)))
        result = session.execute(delete(CommentRecord).where(CommentRecord.created_at < cutoff))
    else:
        result = session.execute(
            update(CommentRecord)
            .where(CommentRecord.created_at < cutoff, CommentRecord.purged_at.is_(None))
            .values(
                author_name="",
                author_email="",
                author_url="",
                user_ip="",
                user_agent=None,
                referrer="",
                purged_at=datetime.now(UTC),
            )
        )
    count = result.rowcount if isinstance(result, CursorResult) else 0
    session.add(
        AuditEvent(
            actor=actor,
            action="privacy.purge",
            detail={"cutoff": cutoff.isoformat(), "deleted": delete_rows, "comments": count},
        )
    )
    session.commit()
    return int(count or 0)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def record_dict(record: CommentRecord) -> dict[str, Any]:
    """A stored comment as plain JSON-ready data (used by export and the API)."""
    return {
        "id": record.id,
        "site_id": record.site_id,
        "created_at": _iso(record.created_at),
        "source": record.source,
        "content": record.content,
        "author_name": record.author_name,
        "author_email": record.author_email,
        "author_url": record.author_url,
        "user_ip": record.user_ip,
        "user_agent": record.user_agent,
        "referrer": record.referrer,
        "permalink": record.permalink,
        "comment_type": record.comment_type,
        "language": record.language,
        "rendered_at": _iso(record.rendered_at),
        "submitted_at": _iso(record.submitted_at),
        "extra": record.extra,
        "is_test": record.is_test,
        "decision": record.decision,
        "score": record.score,
        "reasons": record.reasons,
        "model_version": record.model_version,
        "status": record.status,
        "purged_at": _iso(record.purged_at),
    }


def export_site(session: Session, site_id: int) -> Iterator[str]:
    """One JSON line per comment of the site, oldest first, each with its label history."""
    query = select(CommentRecord).where(CommentRecord.site_id == site_id).order_by(CommentRecord.id)
    for record in session.scalars(query.execution_options(yield_per=500)):
        data = record_dict(record)
        data["labels"] = [
            {"label": lab.label, "source": lab.source, "actor": lab.actor, "created_at": _iso(lab.created_at)}
            for lab in record.labels
        ]
        yield json.dumps(data, ensure_ascii=False)
