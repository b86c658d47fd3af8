"""The `moderation` command. Each concern's commands live in their own module and are added here.

Commands are thin: parse options, call a library function, print. User mistakes exit non-zero with one
clear line (a `ModerationError` becomes a `click.ClickException`), never a traceback.
"""

from __future__ import annotations

import click

from moderation import __version__


@click.group()
@click.version_option(__version__, prog_name="moderation")
def main() -> None:
    """Self-hosted comment moderation: train, check, serve, review."""


# Registration: one line per command module (keep imports light; heavy imports go inside commands).
main.add_command(__import__("moderation.cli.users", fromlist=["users"]).users)
main.add_command(__import__("moderation.cli.webhooks", fromlist=["webhooks"]).webhooks)
list(map(main.add_command, __import__("moderation.cli.service", fromlist=["COMMANDS"]).COMMANDS))
main.add_command(__import__("moderation.cli.datasets", fromlist=["datasets"]).datasets)
list(map(main.add_command, __import__("moderation.cli.models", fromlist=["COMMANDS"]).COMMANDS))
list(map(main.add_command, __import__("moderation.cli.learning", fromlist=["COMMANDS"]).COMMANDS))
