"""Sites and their API keys. Only a SHA-256 of each key is stored; the plaintext is shown once.

New keys are 12 lowercase hexadecimal characters, the shape of Akismet's own keys: the WordPress plugin
drops every other character from a key typed on its settings page, and clients check the length. That
is 48 bits of entropy, enough against guessing over HTTP at any rate our limits allow, and a plain hash
suffices because the key is random, not a password. Keys made before (12 lowercase letters and digits)
keep working: lookup is by hash, whatever the shape. Each site also gets a signing secret for
HMAC-signed webhook requests, stored as is because verifying a signature needs it.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from moderation.errors import NotFoundError
from moderation.policy.decision import SiteSettings
from moderation.store.schema import AuditEvent, Site

KEY_LENGTH = 12


def hash_key(key: str) -> str:
    """The SHA-256 hex digest under which a key is stored."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> str:
    """A fresh random API key: KEY_LENGTH lowercase hexadecimal characters."""
    return secrets.token_hex(KEY_LENGTH // 2)


def create_site(
    session: Session, name: str, url: str = "", *, settings: dict[str, Any] | None = None
) -> tuple[Site, str]:
    """Create a site and commit; returns it with its plaintext key, which is never stored or shown again."""
    key = new_key()
    site = Site(
        name=name,
        url=url,
        key_hash=hash_key(key),
        key_hint=key[:4],
        signing_secret=secrets.token_hex(32),
        settings=dict(settings or {}),
    )
    session.add(site)
    session.flush()
    session.add(AuditEvent(actor="cli", action="site.create", site_id=site.id, detail={"name": name, "url": url}))
    session.commit()
    return site, key


def site_for_key(session: Session, key: str) -> Site | None:
    """The active site owning `key`, or None when the key is unknown or revoked."""
    if not key or len(key) > 256:
        return None
    site = session.scalar(select(Site).where(Site.key_hash == hash_key(key)))
    if site is None or site.revoked_at is not None:
        return None
    return site


def get_site(session: Session, site_id: int) -> Site:
    """The site with `site_id`, or NotFoundError."""
    site = session.get(Site, site_id)
    if site is None:
        raise NotFoundError(f"no site with id {site_id}")
    return site


def revoke_site(session: Session, site_id: int, *, actor: str = "cli") -> Site:
    """Revoke a site's key (its comments stay) and commit. Unknown id → NotFoundError."""
    site = get_site(session, site_id)
    if site.revoked_at is None:
        site.revoked_at = datetime.now(UTC)
        session.add(AuditEvent(actor=actor, action="site.revoke", site_id=site.id, detail={}))
        session.commit()
    return site


def rotate_key(session: Session, site_id: int, *, actor: str = "cli") -> tuple[Site, str]:
    """Give an active site a new key (the old one stops working) and commit; returns the site and the new key.

    Unknown or revoked site → NotFoundError. The plaintext is returned once and never stored.
    """
    site = get_site(session, site_id)
    if site.revoked_at is not None:
        raise NotFoundError(f"no active site with id {site_id}: it was revoked, add a new site instead")
    key = new_key()
    site.key_hash = hash_key(key)
    site.key_hint = key[:4]
    session.add(AuditEvent(actor=actor, action="site.rotate_key", site_id=site.id, detail={}))
    session.commit()
    return site, key


def list_sites(session: Session) -> list[Site]:
    """Every site, oldest first, revoked ones included."""
    return list(session.scalars(select(Site).order_by(Site.id)))


def update_settings(session: Session, site_id: int, changes: dict[str, Any], *, actor: str = "cli") -> Site:
    """Merge `changes` into a site's settings (validated by policy.SiteSettings) and commit."""
    site = get_site(session, site_id)
    merged = {**(site.settings or {}), **changes}
    SiteSettings.from_dict(merged)  # raises ConfigError on a bad value before anything is stored
    before = dict(site.settings or {})
    site.settings = merged
    session.add(AuditEvent(actor=actor, action="site.settings", site_id=site.id, detail={"from": before, "to": merged}))
    session.commit()
    return site
