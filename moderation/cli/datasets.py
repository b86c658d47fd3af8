"""`moderation datasets`: fetch the public corpora from their publisher, verify them, pack the shipped copies."""

from __future__ import annotations

from pathlib import Path

import click

from moderation.core.corpora import pack_public_corpora
from moderation.core.datasets import fetch as fetch_datasets
from moderation.errors import ModerationError


@click.group("datasets")
def datasets() -> None:
    """Download and verify the public training corpora; pack the copies the package ships."""


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


@datasets.command("pack")
@click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    required=True,
    help="Folder holding youtube-spam-collection/ and sms-spam-collection/ (the unmodified files).",
)
@click.option(
    "--dest",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=Path("moderation/core/data"),
    show_default=True,
    help="The package's data folder.",
)
def pack(data_dir: Path, dest: Path) -> None:
    """Write the normalised copies of the public corpora the package ships, and their checksums."""
    try:
        paths = pack_public_corpora(data_dir, dest)
    except ModerationError as exc:
        raise click.ClickException(str(exc)) from exc
    for path in paths:
        click.echo(f"wrote {path}")
