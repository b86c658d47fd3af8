"""Review-UI users: argon2 hashes, roles, lockout after repeated failures, the `users` CLI."""

from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from moderation.cli import main
from moderation.errors import AccountLockedError, ConfigError, LoginError
from moderation.store import users
from moderation.store.schema import AuditEvent

PASSWORD = "correct horse battery"


def test_hash_is_argon2id_and_salted():
    """Hashes are argon2id, differ per call and verify only the right password."""
    first, second = users.hash_password(PASSWORD), users.hash_password(PASSWORD)
    assert first.startswith("$argon2id$") and first != second
    assert users.verify_password(first, PASSWORD)
    assert not users.verify_password(first, PASSWORD + "!")
    assert not users.verify_password("not a hash", PASSWORD)


def test_create_and_authenticate(db_session):
    """A created user logs in with the right password, and the login is audited."""
    users.create_user(db_session, "Alice", PASSWORD, role="admin")
    user = users.authenticate(db_session, "alice", PASSWORD)
    assert user.username == "Alice" and user.role == "admin"
    actions = [e.action for e in db_session.query(AuditEvent).all()]
    assert actions == ["user.create", "login"]


@pytest.mark.parametrize(
    ("name", "password", "role", "message"),
    [
        ("bob", "short", "moderator", "at least 10 characters"),
        ("bob", PASSWORD, "owner", "expected one of admin, moderator"),
        ("", PASSWORD, "moderator", "user name"),
    ],
)
def test_bad_new_users_are_refused(db_session, name, password, role, message):
    """Weak passwords, unknown roles and empty names are refused with a clear message."""
    with pytest.raises(ConfigError, match=message):
        users.create_user(db_session, name, password, role=role)


def test_duplicate_name_is_refused(db_session):
    """User names are unique regardless of case."""
    users.create_user(db_session, "carol", PASSWORD)
    with pytest.raises(ConfigError, match="already taken"):
        users.create_user(db_session, "CAROL", PASSWORD)


def test_unknown_user_and_wrong_password_look_the_same(db_session):
    """The error does not reveal whether the name exists."""
    users.create_user(db_session, "dave", PASSWORD)
    with pytest.raises(LoginError) as unknown:
        users.authenticate(db_session, "nobody", PASSWORD)
    with pytest.raises(LoginError) as wrong:
        users.authenticate(db_session, "dave", "wrong password!")
    assert str(unknown.value) == str(wrong.value)


def test_every_failed_login_costs_one_verification_and_one_commit(db_session, monkeypatch):
    """Unknown name or wrong password, short or over-long password: each failure runs one argon2 verification of
    at most MAX_PASSWORD_LENGTH characters and one commit, so response time does not tell names apart (an
    over-long password skipped the hash before, and only a known name's failure was written)."""
    from sqlalchemy import event

    users.create_user(db_session, "frank", PASSWORD)
    verified: list[int] = []

    class Counting:  # the real hasher, noting the length of each password it verifies
        def __init__(self, real):
            self.real = real

        def verify(self, password_hash, password):
            verified.append(len(password))
            return self.real.verify(password_hash, password)

        def __getattr__(self, name):
            return getattr(self.real, name)

    monkeypatch.setattr(users, "_hasher", Counting(users._hasher))
    commits: list[int] = []
    event.listen(db_session, "after_commit", lambda _s: commits.append(1))
    long_password = "x" * (users.MAX_PASSWORD_LENGTH * 50)
    work = {}
    for name, password in [("frank", "wrong password!"), ("frank", long_password),
                           ("nobody", "wrong password!"), ("nobody", long_password)]:  # fmt: skip
        verified.clear()
        commits.clear()
        with pytest.raises(LoginError):
            users.authenticate(db_session, name, password)
        within_cap = max(verified, default=0) <= users.MAX_PASSWORD_LENGTH
        work[(name, len(password))] = (len(verified), within_cap, len(commits))
    assert set(work.values()) == {(1, True, 1)}, work


def test_lockout_after_repeated_failures(db_session):
    """Five failures lock the account even against the right password until the lock expires."""
    users.create_user(db_session, "erin", PASSWORD)
    now = datetime.now(UTC)
    for _ in range(users.MAX_FAILED_LOGINS):
        with pytest.raises(LoginError):
            users.authenticate(db_session, "erin", "guess guess guess", now=now)
    with pytest.raises(AccountLockedError):
        users.authenticate(db_session, "erin", PASSWORD, now=now + timedelta(minutes=1))
    later = now + timedelta(minutes=users.LOCKOUT_MINUTES, seconds=1)
    assert users.authenticate(db_session, "erin", PASSWORD, now=later).failed_logins == 0


def test_cli_adds_user_from_stdin(db_url, monkeypatch):
    """`moderation users add NAME --role admin --password-stdin` creates a working account."""
    monkeypatch.setenv("MODERATION_DATABASE_URL", db_url)
    runner = CliRunner()
    command = ["users", "add", "frank", "--role", "admin", "--password-stdin"]
    result = runner.invoke(main, command, input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    assert "added admin frank" in result.output
    listed = runner.invoke(main, ["users", "list"])
    assert "frank\tadmin" in listed.output
    again = runner.invoke(main, ["users", "add", "frank", "--password-stdin"], input=PASSWORD + "\n")
    assert again.exit_code == 1 and "already taken" in again.output and "Traceback" not in again.output


def test_cli_prompts_for_password_twice(db_url, monkeypatch):
    """Without --password-stdin the password is prompted for, with confirmation."""
    monkeypatch.setenv("MODERATION_DATABASE_URL", db_url)
    result = CliRunner().invoke(main, ["users", "add", "gina"], input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    reset = CliRunner().invoke(main, ["users", "passwd", "gina", "--password-stdin"], input="another long password\n")
    assert reset.exit_code == 0, reset.output
