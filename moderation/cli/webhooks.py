"""`moderation webhooks`: send due site callbacks (for cron, beside the servers' own worker threads)."""

from __future__ import annotations

import time

import click

from moderation import settings
from moderation.errors import ModerationError
from moderation.store import db
from moderation.web.webhooks import deliver_due


@click.group("webhooks")
def webhooks() -> None:
    """Signed callbacks to sites about moderators' decisions."""


@webhooks.command("deliver")
@click.option("--limit", default=200, show_default=True, help="Most deliveries to attempt in one pass.")
@click.option("--loop", "loop_seconds", type=float, default=0.0, help="Keep running, one pass every N seconds.")
def deliver(limit: int, loop_seconds: float) -> None:
    """Send every callback whose time has come; safe to run while servers deliver too."""
    values = settings.load()
    try:
        engine = db.make_engine(settings.database_url(values))
        db.upgrade(engine)
        sessions = db.make_sessionmaker(engine)
        while True:
            report = deliver_due(sessions, limit=limit, allow_private=values["CALLBACK_ALLOW_PRIVATE"])
            click.echo(
                f"delivered {report.delivered}, retrying {report.retrying}, failed {report.failed}, "
                f"cancelled {report.cancelled}"
            )
            if loop_seconds <= 0:
                break
            time.sleep(loop_seconds)
    except ModerationError as exc:
        raise click.ClickException(str(exc)) from exc
