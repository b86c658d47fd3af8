"""The Flask application factory.

`create_app(test_config)` reads the settings (MODERATION_* variables, then `test_config` on top),
refuses a production start with the default secret key, opens the database and brings it to the
newest migration, and registers the blueprints. Everything a view needs hangs off
`app.extensions["moderation"]`, an AppState.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask, Request, Response, current_app, redirect, url_for
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface, SessionMixin
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from moderation import settings as settings_module
from moderation.errors import ConfigError
from moderation.store import db
from moderation.store.db import WalCheckpoints
from moderation.web import akismet, api, review
from moderation.web.limits import RateLimits
from moderation.web.model_holder import ModelHolder


@dataclass
class AppState:
    """What the views share: settings, the database, the model holder and the rate limits."""

    settings: dict[str, Any]
    engine: Engine
    sessions: sessionmaker[Session]
    models: ModelHolder
    checkpoints: WalCheckpoints
    limits: RateLimits
    site_cache: dict[str, Any] = field(default_factory=dict)  # api key → (expiry, Site): see api._cached_site


class CookieSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, minus the work for requests that carry no session cookie.

    Only the review UI uses sessions; API and Akismet clients never send the cookie. Flask builds the
    cookie signer on every request all the same, which was a tenth of a /healthz request's CPU (cProfile).
    A request without any Cookie header is not even parsed for cookies.
    """

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        no_cookies = "HTTP_COOKIE" not in request.environ
        if app.secret_key and (no_cookies or self.get_cookie_name(app) not in request.cookies):
            return self.session_class()
        return super().open_session(app, request)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if session or session.accessed or session.modified:  # else Flask too would leave the response alone
            super().save_session(app, session, response)


def load_settings(test_config: dict[str, Any] | None = None) -> dict[str, Any]:
    """The settings from the environment with `test_config`'s known names laid on top."""
    values = settings_module.load()
    known = {s.name for s in settings_module.SETTINGS}
    values.update({k: v for k, v in (test_config or {}).items() if k in known})
    secret = str(values["SECRET_KEY"])
    if values["ENV"] == "production" and (secret == settings_module.DEFAULT_SECRET_KEY or not secret.strip()):
        found = "an empty value" if not secret.strip() else "the built-in development value"
        raise ConfigError(
            "MODERATION_SECRET_KEY: production (MODERATION_ENV=production) needs a secret key of its own, "
            f"found {found}; set a long random one"
        )
    if values["SESSION_HOURS"] < 1:
        hours = values["SESSION_HOURS"]
        raise ConfigError(f"MODERATION_SESSION_HOURS: expected a whole number of hours, 1 or more, found {hours}")
    return values


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the app. Bad settings → ConfigError; unreachable database → StoreError (both before serving)."""
    values = load_settings(test_config)
    instance = Path(values["INSTANCE_PATH"]).resolve()
    app = Flask(__name__, instance_path=str(instance), instance_relative_config=False)
    app.config.update(
        SECRET_KEY=values["SECRET_KEY"],
        MAX_CONTENT_LENGTH=values["MAX_CONTENT_LENGTH"],
        # Flask presets this key (31 days), so it is set here, never defaulted: the cookie's own expiry.
        PERMANENT_SESSION_LIFETIME=timedelta(hours=values["SESSION_HOURS"]),
    )
    app.config.update({k: v for k, v in (test_config or {}).items() if k.isupper()})
    app.session_interface = CookieSessions()

    limits = RateLimits.from_settings(values)
    engine = db.make_engine(settings_module.database_url(values))
    db.upgrade(engine)
    app.extensions["moderation"] = AppState(
        settings=values,
        engine=engine,
        sessions=db.make_sessionmaker(engine),
        models=ModelHolder(values["MODEL_DIR"], values["MODEL_RELOAD_SECONDS"], engine=engine),
        checkpoints=db.WalCheckpoints(engine),
        limits=limits,
    )

    app.after_request(_checkpoint_when_due)
    api.init_app(app)
    app.register_blueprint(akismet.bp)
    app.register_blueprint(review.bp)
    # A person who opens the server's address wants the review queue.
    app.add_url_rule("/", "index", lambda: redirect(url_for("review.queue")))
    return app


def _checkpoint_when_due(response: Response) -> Response:
    """Checkpoint SQLite's WAL on its own thread when enough commits have piled up (db.WalCheckpoints)."""
    checkpoints = current_app.extensions["moderation"].checkpoints
    if checkpoints.due():
        checkpoints.start()
    return response


def state(app: Flask) -> AppState:
    """The AppState of `app`."""
    found: AppState = app.extensions["moderation"]
    return found
