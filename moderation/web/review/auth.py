"""Login, logout and the two roles: moderators work the queue, admins also manage sites."""

from __future__ import annotations

import functools
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import abort, current_app, flash, g, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from moderation.errors import AccountLockedError, LoginError
from moderation.store.users import authenticate, end_session, session_user, start_session
from moderation.web.review.blueprint import bp, db

F = TypeVar("F", bound=Callable[..., Any])

# Per-account lockout (users.authenticate) stops guessing one password; this stops one address trying a
# few passwords on every account. Counted per process: with N workers an address gets N times the budget,
# still a handful of guesses per minute rather than thousands.
IP_FAILURES_ALLOWED = 20
IP_WINDOW_SECONDS = 900
_failures_lock = threading.Lock()


def _ip_throttled(address: str, *, failed: bool = False) -> bool:
    """Whether `address` has used up its failed-login budget (recording one more failure if `failed`)."""
    now = time.monotonic()
    with _failures_lock:
        failures: dict[str, deque[float]] = current_app.extensions.setdefault(
            "review_login_failures", defaultdict(deque)
        )
        recent = failures[address]
        while recent and recent[0] < now - IP_WINDOW_SECONDS:
            recent.popleft()
        if failed:
            recent.append(now)
        if not recent:
            del failures[address]
            return False
        return len(recent) >= IP_FAILURES_ALLOWED


@bp.before_request
def _load_user() -> None:
    # The cookie only names a login; the review_sessions row says whether it still holds (logout, expiry
    # and a new password delete or outdate it, whatever copies of the cookie exist).
    token = session.get("sid")
    g.user = session_user(db(), token) if isinstance(token, str) else None
    if g.user is None and "sid" in session:
        session.clear()


def login_required(view: F) -> F:
    """Send anyone not logged in to the login page, remembering where they wanted to go."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if g.user is None:
            return redirect(url_for("review.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def admin_required(view: F) -> F:
    """Like login_required, and 403 for anyone who is not an admin."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if g.user is None:
            return redirect(url_for("review.login", next=request.full_path.rstrip("?")))
        if g.user.role != "admin":
            abort(403)
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def safe_next(target: str | None, default: str) -> str:
    """`target` when it is a path inside this app without control characters, else `default` (no open redirects)."""
    if not target:
        return default
    try:
        parts = urlsplit(target)
    except ValueError:  # e.g. "/[" reads as a broken IPv6 host: not a path of ours either
        return default
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    # CR/LF would split the Location header (werkzeug refuses it: a 500, after a decide form had committed).
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in target):
        return default
    return target


@bp.route("/login", methods=["GET", "POST"])
def login() -> str | Response | tuple[str, int]:
    """Show the login form; on POST check the password and start a fresh session."""
    next_url = safe_next(request.values.get("next"), url_for("review.queue"))
    if request.method == "GET":
        if g.user is not None:
            return redirect(next_url)
        return render_template("review/login.html", next=next_url, username="")
    username = request.form.get("username", "")[:150]
    password = request.form.get("password", "")
    address = request.remote_addr or ""
    if _ip_throttled(address):
        error = "too many failed logins from your address: try again in a few minutes"
        return render_template("review/login.html", next=next_url, username=username, error=error), 429
    try:
        user = authenticate(db(), username, password)
    except AccountLockedError as exc:
        return render_template("review/login.html", next=next_url, username=username, error=str(exc)), 429
    except LoginError as exc:
        _ip_throttled(address, failed=True)
        return render_template("review/login.html", next=next_url, username=username, error=str(exc)), 401
    session.clear()  # a new session on login: nothing from before survives (no session fixation)
    session.permanent = True
    session["sid"] = start_session(db(), user, current_app.permanent_session_lifetime)
    flash(f"Signed in as {user.username}.")
    return redirect(next_url)


@bp.post("/logout")
def logout() -> Response:
    """End the login, server-side (POST only, with the CSRF token, so a link elsewhere cannot log anyone out)."""
    token = session.get("sid")
    if isinstance(token, str):
        end_session(db(), token)
    session.clear()
    flash("Signed out.")
    return redirect(url_for("review.login"))
