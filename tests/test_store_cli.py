"""The service's CLI commands: sites add/list/set/revoke/rotate, purge, export, and serve's refusals."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from check_helpers import check_comment
from click.testing import CliRunner
from sqlalchemy import select

from moderation.cli import main
from moderation.comment import Comment
from moderation.store import db
from moderation.store.schema import AuditEvent, CommentRecord
from moderation.store.sites import site_for_key


@pytest.fixture
def run(db_url, tmp_path, monkeypatch):
    """Invoke `moderation ...` against the test database; returns the click Result."""
    monkeypatch.setenv("MODERATION_DATABASE_URL", db_url)
    monkeypatch.setenv("MODERATION_INSTANCE_PATH", str(tmp_path))
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(main, list(args), catch_exceptions=False)

    return invoke


def test_sites_add_list_set_revoke(run, db_url):
    """A new site prints its key once; list shows it; set changes policy; revoke disables the key."""
    added = run("sites", "add", "My blog", "--url", "https://blog.example")
    assert added.exit_code == 0
    key = re.search(r"api key: ([0-9a-f]{12})\n", added.output).group(1)
    assert "signing secret: " in added.output
    listed = run("sites", "list")
    assert "My blog" in listed.output and key[:4] in listed.output and key not in listed.output
    assert json.loads(run("sites", "set", "1", "blocklist", '["casino"]').output) == {"blocklist": ["casino"]}
    bad = run("sites", "set", "1", "spam", "7")
    assert bad.exit_code != 0 and "threshold" in bad.output
    assert run("sites", "revoke", "1").exit_code == 0
    engine = db.make_engine(db_url)
    with db.make_sessionmaker(engine)() as session:
        assert site_for_key(session, key) is None
    engine.dispose()
    missing = run("sites", "revoke", "42")
    assert missing.exit_code != 0 and "no site with id 42" in missing.output


def test_sites_rotate_gives_a_new_key_and_retires_the_old(run, db_url):
    """rotate prints a new hex key that works; the old key and a revoked site's rotation are refused."""
    old = re.search(r"api key: (\w+)", run("sites", "add", "Blog").output).group(1)
    rotated = run("sites", "rotate", "1")
    assert rotated.exit_code == 0
    new = re.search(r"api key: ([0-9a-f]{12})\n", rotated.output).group(1)
    engine = db.make_engine(db_url)
    with db.make_sessionmaker(engine)() as session:
        assert site_for_key(session, old) is None and site_for_key(session, new).id == 1
        assert session.scalars(select(AuditEvent.action).where(AuditEvent.site_id == 1)).all()[-1] == "site.rotate_key"
    engine.dispose()
    run("sites", "revoke", "1")
    refused = run("sites", "rotate", "1")
    assert refused.exit_code != 0 and "revoked" in refused.output
    assert "no site with id 42" in run("sites", "rotate", "42").output


def test_sites_set_rate_limit_is_checked_before_it_is_stored(run):
    """`sites set N rate_limit` stores a readable rate and refuses anything else with one line."""
    run("sites", "add", "News")
    stored = json.loads(run("sites", "set", "1", "rate_limit", "6000/minute").output)
    assert stored == {"rate_limit": "6000/minute"}
    bad = run("sites", "set", "1", "rate_limit", "lots")
    assert bad.exit_code != 0 and "expected a rate like 1200/minute" in bad.output and "Traceback" not in bad.output
    assert json.loads(run("sites", "set", "1", "rate_limit", '""').output) == {"rate_limit": ""}


def test_purge_and_export(run, db_url):
    """purge --older-than blanks old personal data; export --site writes that site's JSON lines."""
    run("sites", "add", "Blog")
    engine = db.make_engine(db_url)
    with db.make_sessionmaker(engine)() as session:
        from moderation.store.sites import get_site

        site = get_site(session, 1)
        old, _ = check_comment(session, site, Comment(content="old", author_email="a@b.example"), model=None)
        check_comment(session, site, Comment(content="new", author_email="c@d.example"), model=None)
        session.get(CommentRecord, old.id).created_at = datetime.now(UTC) - timedelta(days=120)
        session.commit()
    engine.dispose()
    purged = run("purge", "--older-than", "90d")
    assert purged.exit_code == 0 and "1 comments" in purged.output
    rows = [json.loads(line) for line in run("export", "--site", "1").output.splitlines()]
    assert [(r["content"], r["author_email"]) for r in rows] == [("old", ""), ("new", "c@d.example")]
    assert run("purge", "--older-than", "soon").exit_code != 0
    assert "no site with id 9" in run("export", "--site", "9").output


def test_serve_refuses_production_with_the_default_secret(run, monkeypatch):
    """`serve` in production with the built-in secret key exits with one clear line, before listening."""
    monkeypatch.setenv("MODERATION_ENV", "production")
    result = run("serve", "--port", "0")
    assert result.exit_code != 0
    assert "MODERATION_SECRET_KEY" in result.output and "Traceback" not in result.output
