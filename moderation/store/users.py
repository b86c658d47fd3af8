"""People who log into the review UI: argon2 password hashes, two roles, login throttling, sessions.

Passwords are hashed with argon2id (argon2-cffi's defaults follow RFC 9106's second recommended
profile). A login that fails `MAX_FAILED_LOGINS` times in a row locks the account for
`LOCKOUT_MINUTES`; every further failure while locked is refused without checking the password, so a
guesser gets a handful of tries per quarter hour instead of thousands. Every failed login costs the same
work, so response time does not reveal which names exist: one hash verification (an over-long password
is cut to MAX_PASSWORD_LENGTH and verified, then refused) and one committed audit event (an unknown
name's failure is recorded too).

A login is a `ReviewSession` row: the browser keeps a random token, the row its SHA-256 and an expiry.
Logging out deletes the row, so a copy of the cookie taken before stops working; a new password
deletes every session of its user.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from moderation.errors import AccountLockedError, ConfigError, LoginError, NotFoundError
from moderation.store.schema import AuditEvent, ReviewSession, User

ROLES = ("admin", "moderator")
MAX_FAILED_LOGINS = 5
LOCKOUT_MINUTES = 15
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024  # argon2 handles any length; this only bounds the work an attacker can request

_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    # Verified against when the user name is unknown, so both paths cost one argon2 verification.
    return _hasher.hash("no such user: dummy password")


def hash_password(password: str) -> str:
    """An argon2id hash of `password` (salted; every call gives a different string)."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when `password` matches `password_hash`; False for a wrong password, a malformed hash, or a password
    over MAX_PASSWORD_LENGTH (which still costs one verification, of its first MAX_PASSWORD_LENGTH characters)."""
    too_long = len(password) > MAX_PASSWORD_LENGTH
    try:
        matches = _hasher.verify(password_hash, password[:MAX_PASSWORD_LENGTH])
    except (VerificationError, InvalidHashError):
        return False
    return matches and not too_long


def check_new_password(password: str) -> None:
    """Refuse a password too short or too long to use, with a ConfigError saying why."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ConfigError(f"password: expected at least {MIN_PASSWORD_LENGTH} characters, found {len(password)}")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ConfigError(f"password: expected at most {MAX_PASSWORD_LENGTH} characters, found {len(password)}")


def get_user(session: Session, username: str) -> User | None:
    """The user called `username` (case-insensitive), or None."""
    return session.scalar(select(User).where(func.lower(User.username) == username.strip().lower()))


def create_user(session: Session, username: str, password: str, *, role: str = "moderator", actor: str = "cli") -> User:
    """Add a user and commit. A taken name, unknown role or weak password → ConfigError."""
    username = username.strip()
    if not username or len(username) > 150:
        raise ConfigError(f"user name: expected 1 to 150 characters, found {len(username)}")
    if role not in ROLES:
        raise ConfigError(f"role: expected one of {', '.join(ROLES)}, found {role!r}")
    check_new_password(password)
    if get_user(session, username) is not None:
        raise ConfigError(f"user name: {username!r} is already taken")
    user = User(username=username, password_hash=hash_password(password), role=role, failed_logins=0)
    session.add(user)
    session.add(AuditEvent(actor=actor, action="user.create", detail={"username": username, "role": role}))
    session.commit()
    return user


def set_password(session: Session, username: str, password: str, *, actor: str = "cli") -> User:
    """Replace a user's password, unlock the account and commit. Unknown name → NotFoundError."""
    user = get_user(session, username)
    if user is None:
        raise NotFoundError(f"no user called {username!r}")
    check_new_password(password)
    user.password_hash = hash_password(password)
    user.failed_logins = 0
    user.locked_until = None
    session.execute(delete(ReviewSession).where(ReviewSession.user_id == user.id))  # whoever knew the old one
    session.add(AuditEvent(actor=actor, action="user.password", detail={"username": user.username}))
    session.commit()
    return user


def list_users(session: Session) -> list[User]:
    """Every user, by name."""
    return list(session.scalars(select(User).order_by(User.username)))


def _aware(moment: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes even for timezone-aware columns; we only ever store UTC.
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


def authenticate(session: Session, username: str, password: str, *, now: datetime | None = None) -> User:
    """The user when name and password match; commits the failure count either way.

    Raises LoginError for an unknown name or a wrong password, AccountLockedError while the account is
    locked (even with the right password: the lock is what stops guessing).
    """
    now = now or datetime.now(UTC)
    user = get_user(session, username)
    if user is None:
        verify_password(_dummy_hash(), password)
        # Recorded like a known name's failure (one commit either way), and worth knowing about besides.
        session.add(AuditEvent(actor=username.strip()[:200], action="login.failed", detail={"unknown_user": True}))
        session.commit()
        raise LoginError("unknown user name or wrong password")
    locked_until = _aware(user.locked_until)
    if locked_until is not None and locked_until > now:
        raise AccountLockedError(f"too many failed logins: locked until {locked_until:%H:%M} UTC")
    if not verify_password(user.password_hash, password):
        user.failed_logins = (user.failed_logins or 0) + 1
        detail: dict[str, object] = {"failed_logins": user.failed_logins}
        if user.failed_logins >= MAX_FAILED_LOGINS:
            user.locked_until = now + timedelta(minutes=LOCKOUT_MINUTES)
            detail["locked_until"] = user.locked_until.isoformat()
        session.add(AuditEvent(actor=user.username, action="login.failed", detail=detail))
        session.commit()
        raise LoginError("unknown user name or wrong password")
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.failed_logins = 0
    user.locked_until = None
    session.add(AuditEvent(actor=user.username, action="login", detail={}))
    session.commit()
    return user


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def start_session(session: Session, user: User, lifetime: timedelta, *, now: datetime | None = None) -> str:
    """Record a login of `user` lasting `lifetime` and commit; returns the token the browser keeps.

    Expired sessions of every user are deleted on the way, so the table holds live logins only.
    """
    now = now or datetime.now(UTC)
    token = secrets.token_urlsafe(32)
    session.execute(delete(ReviewSession).where(ReviewSession.expires_at <= now))
    session.add(ReviewSession(id=_token_hash(token), user_id=user.id, created_at=now, expires_at=now + lifetime))
    session.commit()
    return token


def session_user(session: Session, token: str, *, now: datetime | None = None) -> User | None:
    """The user logged in with `token`, or None when it was never issued, has ended or has expired."""
    if not token or len(token) > 256:
        return None
    query = (
        select(User)
        .join(ReviewSession, ReviewSession.user_id == User.id)
        .where(ReviewSession.id == _token_hash(token), ReviewSession.expires_at > (now or datetime.now(UTC)))
    )
    return session.scalar(query)


def end_session(session: Session, token: str) -> None:
    """End the login of `token` (every copy of its cookie) and commit; an unknown token is ignored."""
    if token:
        session.execute(delete(ReviewSession).where(ReviewSession.id == _token_hash(token)))
        session.commit()
