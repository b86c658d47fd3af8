"""Settings come from MODERATION_* variables, typed, with clear errors."""

import pytest

from moderation import settings
from moderation.errors import ConfigError


def test_defaults_when_environment_is_empty():
    """With no variables set every setting takes its declared default."""
    values = settings.load({})
    assert values == {s.name: s.default for s in settings.SETTINGS}


def test_typed_values_are_coerced():
    """Integers and booleans are parsed from their string form."""
    values = settings.load({"MODERATION_MAX_CONTENT_LENGTH": "1024", "MODERATION_ANONYMIZE_IP": "yes"})
    assert values["MAX_CONTENT_LENGTH"] == 1024
    assert values["ANONYMIZE_IP"] is True


def test_bad_value_names_the_variable():
    """A value of the wrong type fails with the variable's name and what was found."""
    with pytest.raises(ConfigError, match="MODERATION_WORKERS: expected an integer, found 'two'"):
        settings.load({"MODERATION_WORKERS": "two"})


def test_sqlite_is_the_default_database(tmp_path):
    """Without DATABASE_URL the embedded SQLite file in the instance folder is used."""
    values = settings.load({"MODERATION_INSTANCE_PATH": str(tmp_path)})
    assert settings.database_url(values) == f"sqlite:///{tmp_path / 'moderation.sqlite3'}"


def test_a_renamed_setting_is_still_read_under_its_old_name():
    """MODERATION_RATELIMIT_CHECK (the old name) sets RATELIMIT_SITE unless the new name is set too."""
    assert settings.load({"MODERATION_RATELIMIT_CHECK": "10/minute"})["RATELIMIT_SITE"] == "10/minute"
    both = {"MODERATION_RATELIMIT_CHECK": "10/minute", "MODERATION_RATELIMIT_SITE": "99/minute"}
    assert settings.load(both)["RATELIMIT_SITE"] == "99/minute"
