"""The review blueprint and the security every one of its pages shares (see the package docstring)."""


from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, g, render_template, request
from flask.sansio.blueprints import BlueprintSetupState
from flask_wtf.csrf import CSRFError, CSRFProtect
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

bp = Blueprint(
    "review",
    __name__,
    url_prefix="/review",
    template_folder="../templates",
    static_folder="../static/review",
    static_url_path="/static",
)
csrf = CSRFProtect()

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ]
)


@bp.record_once
def _init_app(state: BlueprintSetupState) -> None:
    app = state.app
    app.config.setdefault("WTF_CSRF_CHECK_DEFAULT", False)
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # the token lives as long as the login session
    app.config.setdefault("SESSION_COOKIE_HTTPONLY", True)
    app.config["SESSION_COOKIE_SAMESITE"] = app.config.get("SESSION_COOKIE_SAMESITE") or "Lax"
    state_obj = app.extensions.get("moderation")
    settings: dict[str, Any] = getattr(state_obj, "settings", {}) or {}
    if settings.get("ENV") == "production":
        app.config["SESSION_COOKIE_SECURE"] = True
    csrf.init_app(app)


def db() -> Session:
    """The database session of this request (opened on first use, closed at the end of the request)."""
    if "review_db" not in g:
        g.review_db = current_app.extensions["moderation"].sessions()
    session: Session = g.review_db
    return session


@bp.teardown_request
def _close_db(_exc: BaseException | None) -> None:
    session = g.pop("review_db", None)
    if session is not None:
        session.close()


# Largest id a row can have (BIGINT; sites.id is INTEGER). Larger ids in a URL overflow the database driver
# (a 500 on SQLite, a 503 on PostgreSQL before this check); no such row can exist, so they are not found.
MAX_ID = 2**63 - 1
MAX_SITE_ID = 2**31 - 1


@bp.url_value_preprocessor
def _ids_in_range(_endpoint: str | None, values: dict[str, Any] | None) -> None:
    limits = {"site_id": MAX_SITE_ID}
    if values and any(isinstance(v, int) and not 0 <= v <= limits.get(k, MAX_ID) for k, v in values.items()):
        abort(404)


@bp.before_request
def _check_csrf() -> None:
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        csrf.protect()


@bp.after_request
def _security_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    if request.endpoint != "review.static":
        response.headers["Cache-Control"] = "no-store"
    return response


@bp.errorhandler(400)
def _bad_request(error: Exception) -> tuple[str, int]:
    message = getattr(error, "description", "") or "The request could not be understood."
    return render_template("review/error.html", title="Bad request", message=message), 400


@bp.errorhandler(403)
def _forbidden(_error: Exception) -> tuple[str, int]:
    return render_template("review/error.html", title="Not allowed", message="This page is for admins."), 403


@bp.errorhandler(404)
def _not_found(_error: Exception) -> tuple[str, int]:
    return render_template("review/error.html", title="Not found", message="There is nothing here."), 404


@bp.errorhandler(CSRFError)
def _csrf_error(error: CSRFError) -> tuple[str, int]:
    message = f"{error.description} Go back, reload the page and try again."
    return render_template("review/error.html", title="Form expired", message=message), 400
