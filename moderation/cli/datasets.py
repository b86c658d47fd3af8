"""`moderation datasets`: fetch the public corpora from their publisher and verify them."""

from __future__ import annotations

from pathlib import Path

import click

from moderation.core.datasets import fetch as fetch_datasets
from moderation.errors import ModerationError


@click.group("datasets")
def datasets() -> None:
    """Download and verify the public training corpora."""


@datasets.command("fetch")
@click.option(
    "--dest",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="MODERATION_DATA_DIR",
    default=Path("data"),
    show_default=True,
    help="Folder to put the corpora in (default: MODERATION_DATA_DIR, else ./data).",
)
def fetch(dest: Path) -> None:
    """Download the YouTube and SMS spam collections from UCI and check every file's SHA-256."""
    try:
        paths = fetch_datasets(dest)
    except ModerationError as exc:
        raise click.ClickException(str(exc)) from exc
    for path in paths:
        click.echo(f"verified {path}")
    click.echo(f"{len(paths)} files ready; train with MODERATION_DATA_DIR={dest}")
