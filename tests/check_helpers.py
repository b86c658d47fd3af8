"""The check path as the Akismet endpoint runs it, for tests that want the stored row back as an ORM object."""

from __future__ import annotations

from moderation.checking.check import check_and_store, site_settings
from moderation.store.schema import CommentRecord


def check_comment(session, site, comment, *, model, **options):
    """`check_and_store` on the session's engine with the site's policy; returns (stored record, verdict)."""
    stored = check_and_store(session.get_bind(), site.id, site_settings(site), comment, model=model, **options)
    return session.get(CommentRecord, stored.id), stored.verdict
