"""Shared set-up for the review UI tests (Flask client and browser): users, sites and comments in a real DB."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from moderation.comment import Comment
from moderation.store.schema import CommentRecord
from moderation.store.sites import create_site
from moderation.store.users import create_user

PASSWORD = "review-password-123"


def add_user(sessions, name: str = "alice", role: str = "admin") -> None:
    """Create a review-UI user with the shared test password."""
    with sessions() as session:
        create_user(session, name, PASSWORD, role=role)


def add_site(sessions, name: str = "Blog", callback_url: str = "", secret: str = "cb-secret"):
    """Create a site (optionally with a callback URL and secret); returns (site id, API key)."""
    with sessions() as session:
        site, key = create_site(session, name, "https://blog.example")
        site.callback_url = callback_url
        site.callback_secret = secret if callback_url else ""
        session.commit()
        return site.id, key


def add_comment(
    sessions,
    site_id: int,
    content: str,
    *,
    author_name: str = "Reader",
    decision: str = "hold",
    status: str | None = None,
    score: float | None = 0.5,
    reasons: list[str] | None = None,
    minutes_ago: float = 0,
    **fields,
) -> int:
    """Store a comment record as a check would have; returns its id."""
    with sessions() as session:
        record = CommentRecord(
            site_id=site_id,
            created_at=datetime.now(UTC) - timedelta(minutes=minutes_ago),
            content=content,
            content_hash=str(abs(hash(content))),
            author_name=author_name,
            decision=decision,
            status=status or decision,
            score=score,
            reasons=reasons if reasons is not None else [f"classifier: {score or 0:.0%} spam probability"],
            model_version="test-1",
            **fields,
        )
        session.add(record)
        session.commit()
        return record.id


def check(sessions, site_id: int, comment: Comment) -> int:
    """Run the real check (no model: everything is held) and return the stored comment's id."""
    from moderation.checking.check import check_and_store, site_settings
    from moderation.store.schema import Site

    with sessions() as session:
        settings = site_settings(session.get(Site, site_id))
        return check_and_store(session.get_bind(), site_id, settings, comment, model=None).id


def csrf_from(html: str) -> str:
    """The CSRF token in a rendered page."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def login(client, name: str = "alice", password: str = PASSWORD):
    """Log `client` in through the real form (fetching its CSRF token first)."""
    token = csrf_from(client.get("/review/login").get_data(as_text=True))
    return client.post("/review/login", data={"username": name, "password": password, "csrf_token": token})
