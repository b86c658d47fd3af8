"""The `moderation` command. Each concern's commands live in their own module and are added here.

Commands are thin: parse options, call a library function, print. User mistakes exit non-zero with one
clear line (a `ModerationError` becomes a `click.ClickException`), never a traceback. The CLI sits on
top: it may import every part, and no part imports it.
"""

from __future__ import annotations

import click

from moderation import __version__
from moderation.cli import datasets, learning, models, service, users, webhooks


@click.group()
@click.version_option(__version__, prog_name="moderation")
def main() -> None:
    """Self-hosted comment moderation: train, check, serve, review."""


main.add_command(users.users)
main.add_command(webhooks.webhooks)
main.add_command(datasets.datasets)
for command in (*service.COMMANDS, *models.COMMANDS, *learning.COMMANDS):
    main.add_command(command)
