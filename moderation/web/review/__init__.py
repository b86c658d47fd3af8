"""The moderators' web UI: a blueprint of server-rendered pages under /review.

Security lives here, once, for every page of the blueprint:

- CSRF: flask-wtf's `CSRFProtect` is initialised with `WTF_CSRF_CHECK_DEFAULT = False` so the JSON and
  Akismet APIs (authenticated by key, called by other servers) stay exempt, and this blueprint checks
  the token itself before every POST. A POST without a valid token gets 400.
- Session cookie: HttpOnly, SameSite=Lax, Secure when `MODERATION_ENV=production`.
- Headers: a strict Content-Security-Policy (scripts and styles only from our own static files, no
  inline code, no frames, forms only to ourselves), no referrer (a moderator clicking through to a
  spammer's link leaks nothing), nosniff, no caching of pages that show personal data.

Modules: `blueprint` (the blueprint, security headers, CSRF, database session), `auth` (login,
logout, roles), `views` (queue, item, search, actions, undo, deliveries), `admin` (sites), `stats`
(charts), `render` (inert comment text), `charts` (inline SVG), `actions` (what a decision does:
label, status, audit, callback, undo).
"""

from moderation.web.review import admin, auth, stats, views  # the routes attach themselves to `bp`
from moderation.web.review.blueprint import bp, csrf

__all__ = ["admin", "auth", "bp", "csrf", "stats", "views"]
