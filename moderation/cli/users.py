"""`moderation users`: add review-UI users, reset passwords, list them."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import click
from sqlalchemy.orm import Session

from moderation import settings
from moderation.errors import ModerationError
from moderation.store import db
from moderation.store.users import create_user, list_users, set_password


@contextmanager
def _session() -> Iterator[Session]:
    """A session on the configured database, migrated to the newest schema."""
    values = settings.load()
    engine = db.make_engine(settings.database_url(values))
    try:
        db.upgrade(engine)
        with db.make_sessionmaker(engine)() as session:
            yield session
    finally:
        engine.dispose()


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


@click.group("users")
def users() -> None:
    """Manage the people who log into the review UI."""


@users.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(["admin", "moderator"]), default="moderator", show_default=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input.")
def add(name: str, role: str, password_stdin: bool) -> None:
    """Add a user called NAME, prompting for a password."""
    password = _read_password(password_stdin)
    try:
        with _session() as session:
            user = create_user(session, name, password, role=role)
    except ModerationError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"added {user.role} {user.username}")


@users.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input.")
def passwd(name: str, password_stdin: bool) -> None:
    """Set a new password for NAME and unlock the account."""
    password = _read_password(password_stdin)
    try:
        with _session() as session:
            set_password(session, name, password)
    except ModerationError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"password changed for {name}")


@users.command("list")
def list_() -> None:
    """List users with their role and whether they are locked out."""
    try:
        with _session() as session:
            now = datetime.now(UTC)
            for user in list_users(session):
                until = user.locked_until
                if until is not None and until.tzinfo is None:
                    until = until.replace(tzinfo=UTC)  # SQLite returns naive UTC datetimes
                locked = f" (locked until {until:%H:%M} UTC)" if until is not None and until > now else ""
                click.echo(f"{user.username}\t{user.role}{locked}")
    except ModerationError as exc:
        raise click.ClickException(str(exc)) from exc
