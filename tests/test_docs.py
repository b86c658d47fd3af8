"""The README keeps up with the code: every setting and every CLI command is documented."""

from pathlib import Path

import click
import pytest

from moderation import settings
from moderation.cli import main

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def _command_paths(group: click.Group, prefix: str = "moderation") -> list[str]:
    paths = []
    for name, command in sorted(group.commands.items()):
        path = f"{prefix} {name}"
        if isinstance(command, click.Group):
            paths.extend(_command_paths(command, path))
        else:
            paths.append(path)
    return paths


@pytest.mark.parametrize("setting", [s.name for s in settings.SETTINGS])
def test_every_setting_is_in_the_readme(setting):
    """Each MODERATION_* variable appears in the README's settings table."""
    assert f"`MODERATION_{setting}`" in README


@pytest.mark.parametrize("command", _command_paths(main))
def test_every_cli_command_is_in_the_readme(command):
    """Each `moderation ...` command is named in the README."""
    assert command in README


def test_readme_has_the_two_setup_commands():
    """The quick start holds the run command and the test command that CI calls."""
    assert "make run" in README
    assert "make test" in README
    ci = (Path(__file__).resolve().parent.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert "make test" in ci
