"""What the model commands (`models.py`: train, evaluate, check; `learning.py`: retrain, models) share.

user_errors()            a `ModerationError` becomes one clear line and exit status 1
load_settings()          the MODERATION_* settings, a bad value as one clear line
model_folder(option)     --model-dir, else MODERATION_MODEL_DIR
data_folder(option)      --data, else MODERATION_DATA_DIR (None when that is empty)
progress(line)           long work reports on stderr, so stdout keeps only results
MODEL_DIR_OPTION         the --model-dir option
data_option(help)        the --data option, with what this command trains or measures on
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from moderation import settings
from moderation.errors import ModerationError


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the package's deliberate errors into a one-line click error (exit status 1)."""
    try:
        yield
    except ModerationError as exc:
        raise click.ClickException(str(exc)) from exc


def load_settings() -> dict[str, Any]:
    """Every setting from the environment; a value that cannot be used is a one-line click error."""
    with user_errors():
        return settings.load()


def model_folder(option: Path | None) -> Path:
    """The --model-dir folder given, else MODERATION_MODEL_DIR (settings are read only then)."""
    return option if option is not None else Path(load_settings()["MODEL_DIR"])


def data_folder(option: Path | None) -> Path | None:
    """The --data folder given, else MODERATION_DATA_DIR; None when neither names one."""
    if option is not None:
        return option
    configured = load_settings()["DATA_DIR"]
    return Path(configured) if configured else None


def progress(line: str) -> None:
    """Print a progress line on stderr."""
    click.echo(line, err=True)


MODEL_DIR_OPTION = click.option(
    "--model-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder of model artifacts (default: MODERATION_MODEL_DIR).",
)


def data_option(help_text: str) -> Callable[[Any], Any]:
    """The --data option (parameter `data_dir`); `help_text` says what the command reads from the folder."""
    return click.option("--data", "data_dir", type=click.Path(path_type=Path), help=help_text)
