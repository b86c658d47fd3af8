"""The store on real SQLite and PostgreSQL: migrations, sites and keys, checked comments, labels, privacy."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from check_helpers import check_comment
from sqlalchemy import func, inspect, select, text

from moderation.comment import Comment, Decision, Label
from moderation.core.thresholds import Thresholds
from moderation.errors import ConfigError, NotFoundError, StoreError
from moderation.store import db
from moderation.store.labels import record_label, set_status
from moderation.store.privacy import anonymize_ip, export_site, parse_age, purge
from moderation.store.schema import AuditEvent, CommentRecord, LabelRecord
from moderation.store.sites import create_site, hash_key, list_sites, revoke_site, site_for_key, update_settings


def test_migrations_create_every_table(db_engine):
    """Upgrading an empty database to head creates every table of the schema and records the revision."""
    tables = set(inspect(db_engine).get_table_names())
    assert {"sites", "comments", "labels", "audit_log", "model_versions", "users", "webhook_deliveries"} <= tables
    assert db.current_revision(db_engine) is not None


def test_upgrade_twice_is_harmless(db_engine):
    """Running the migrations again on a migrated database changes nothing."""
    before = db.current_revision(db_engine)
    db.upgrade(db_engine)
    assert db.current_revision(db_engine) == before


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path):
    """SQLite connections use WAL, a busy timeout and enforce foreign keys."""
    engine = db.make_engine(f"sqlite:///{tmp_path / 'x' / 'm.sqlite3'}")
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() == db.SQLITE_BUSY_TIMEOUT_MS
    engine.dispose()


def test_bad_database_url_is_a_config_error():
    """A malformed URL fails with ConfigError naming the setting."""
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        db.make_engine("not a url")


def test_unreachable_database_is_reported_not_raised():
    """`ping` explains an unreachable database instead of raising."""
    engine = db.make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1")
    assert "database unreachable" in (db.ping(engine) or "")


def test_site_keys_are_hashed_and_revocable(db_session):
    """A new site's key is 12 lowercase hex characters, only its hash is stored, and revoking disables it."""
    site, key = create_site(db_session, "Blog", "https://blog.example")
    assert re.fullmatch(r"[0-9a-f]{12}", key)
    assert site.key_hash == hash_key(key) and key not in json.dumps(site.settings)
    assert site_for_key(db_session, key).id == site.id
    assert site_for_key(db_session, "wrongwrongwr") is None
    revoke_site(db_session, site.id)
    assert site_for_key(db_session, key) is None
    assert [s.name for s in list_sites(db_session)] == ["Blog"]
    with pytest.raises(NotFoundError):
        revoke_site(db_session, 999)


def test_site_settings_are_validated(db_session):
    """Settings that policy cannot use are refused before they are stored."""
    site, _ = create_site(db_session, "Blog")
    with pytest.raises(ConfigError, match="threshold"):
        update_settings(db_session, site.id, {"spam": 2})
    update_settings(db_session, site.id, {"blocklist": ["casino"]})
    assert site.settings == {"blocklist": ["casino"]}


def test_checked_comment_is_stored_with_verdict_and_audit(db_session):
    """Without a model a comment is held, stored with its metadata and reasons, and audited."""
    site, _ = create_site(db_session, "Blog")
    comment = Comment(
        content="Nice post",
        author_name="Ann",
        author_email="Ann@Example.org ",
        user_ip="203.0.113.9",
        user_agent="Firefox",
    )
    record, verdict = check_comment(db_session, site, comment, model=None)
    assert verdict.decision is Decision.HOLD and "no model loaded" in verdict.reasons[0]
    stored = db_session.get(CommentRecord, record.id)
    assert (stored.status, stored.score, stored.model_version) == ("hold", None, None)
    assert stored.author_email == "ann@example.org" and stored.user_ip == "203.0.113.9"
    assert (
        db_session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.comment_id == record.id)) == 1
    )


def test_ip_anonymisation_stores_no_host_part(db_session):
    """With anonymisation on, only the network part of the IP address is stored."""
    site, _ = create_site(db_session, "Blog")
    record, _ = check_comment(
        db_session, site, Comment(content="hi", user_ip="203.0.113.9"), model=None, anonymize_ip=True
    )
    assert record.user_ip == "203.0.113.0"
    assert anonymize_ip("2001:db8:1:2:3:4:5:6") == "2001:db8:1::"
    assert anonymize_ip("not an ip") == ""


def test_labels_keep_history_and_move_status(db_session):
    """Each label is kept with who and where; the latest one sets the status; every change is audited."""
    site, _ = create_site(db_session, "Blog")
    record, _ = check_comment(db_session, site, Comment(content="Buy pills"), model=None)
    record_label(db_session, record, Label.SPAM, source="feedback", actor=f"site:{site.id}")
    assert record.status == "spam"
    record_label(db_session, record, Label.HAM, source="moderator", actor="alice")
    assert record.status == "approve"
    set_status(db_session, record, "deleted", actor="alice")
    history = db_session.scalars(
        select(LabelRecord).where(LabelRecord.comment_id == record.id).order_by(LabelRecord.id)
    )
    assert [(lab.label, lab.actor) for lab in history] == [("spam", f"site:{site.id}"), ("ham", "alice")]
    actions = db_session.scalars(
        select(AuditEvent.action).where(AuditEvent.comment_id == record.id).order_by(AuditEvent.id)
    )
    assert list(actions) == ["comment.check", "comment.label", "comment.label", "comment.status"]
    with pytest.raises(ValueError, match="status"):
        set_status(db_session, record, "published", actor="alice")


def test_purge_blanks_personal_data_past_retention(db_session):
    """Purging blanks author, email, URL, IP and user agent of old comments and leaves recent ones alone."""
    site, _ = create_site(db_session, "Blog")
    old, _ = check_comment(
        db_session,
        site,
        Comment(content="old", author_email="a@b.c", user_ip="198.51.100.1", user_agent="UA"),
        model=None,
    )
    new, _ = check_comment(db_session, site, Comment(content="new", author_email="d@e.f"), model=None)
    old.created_at = datetime.now(UTC) - timedelta(days=100)
    db_session.commit()
    assert purge(db_session, parse_age("90d")) == 1
    db_session.expire_all()
    assert (old.author_email, old.user_ip, old.user_agent, old.content) == ("", "", None, "old")
    assert old.purged_at is not None and new.author_email == "d@e.f"
    assert purge(db_session, parse_age("90d"), delete_rows=True) == 1
    assert db_session.get(CommentRecord, old.id) is None
    with pytest.raises(ConfigError, match="90d"):
        parse_age("three months")


def test_export_writes_one_json_line_per_comment_with_labels(db_session):
    """A site's export holds its comments only, each with its label history."""
    site, _ = create_site(db_session, "Blog")
    other, _ = create_site(db_session, "Other")
    record, _ = check_comment(db_session, site, Comment(content="first"), model=None)
    check_comment(db_session, other, Comment(content="not mine"), model=None)
    record_label(db_session, record, Label.HAM, source="moderator", actor="alice")
    lines = [json.loads(line) for line in export_site(db_session, site.id)]
    assert [row["content"] for row in lines] == ["first"]
    assert lines[0]["labels"][0]["label"] == "ham"


def test_database_failure_raises_store_error(tmp_path):
    """When the tables are missing the check raises StoreError instead of answering."""
    engine = db.make_engine(f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    db.upgrade(engine)
    session = db.make_sessionmaker(engine)()
    site, _ = create_site(session, "Blog")
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE audit_log"))
    with pytest.raises(StoreError):
        check_comment(session, site, Comment(content="hello"), model=None)
    session.close()
    engine.dispose()


class _BrokenModel:
    version = "broken-1"
    thresholds = Thresholds()

    def score_for_site(self, comment, site_id):
        raise RuntimeError("bug in the model")

    def predict_proba_for_site(self, comments, site_id):
        raise RuntimeError("bug in the model")


def test_a_failing_model_still_stores_and_holds(db_session):
    """If the model raises, the comment is stored and held with a reason instead of being lost."""
    site, _ = create_site(db_session, "Blog")
    record, verdict = check_comment(db_session, site, Comment(content="hello"), model=_BrokenModel())
    assert verdict.decision is Decision.HOLD and record.status == "hold" and record.score is None
    assert verdict.reasons[0] == "the classifier failed on this comment: held for a moderator"


def test_migrations_match_the_schema(db_engine):
    """Alembic finds no difference between the migrated database and schema.py: tables, columns and indexes."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from moderation.store.schema import Base

    with db_engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []


def _plan(connection, statement, parameters) -> str:
    """The database's plan for `statement`; PostgreSQL is told to avoid sequential scans wherever an index can serve."""
    compiled = statement.compile(connection.engine)
    values = compiled.construct_params(parameters)
    if connection.dialect.name == "sqlite":
        arguments = tuple(values[name] for name in compiled.positiontup)
        rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled.string}", arguments).all()
        return "\n".join(row[3] for row in rows)
    connection.exec_driver_sql("SET enable_seqscan = off")
    return "\n".join(row[0] for row in connection.exec_driver_sql(f"EXPLAIN {compiled.string}", values).all())


def test_comment_lookups_use_an_index(db_engine):
    """The history rules' query and the app's other lookups of comments search an index, never scan the table."""
    from moderation.policy.decision import SiteSettings
    from moderation.store.history import history_parameters, history_query

    now = datetime.now(UTC)
    # With email and IP every count runs (without, SQLite plans a scan for the constant-false ones it never runs).
    full = Comment(content="x", author_email="a@b.c", user_ip="192.0.2.1")
    lookups = [
        (history_query(full), history_parameters(1, full, SiteSettings(), content_hash="h", now=now)),
        (select(CommentRecord.id).where(CommentRecord.site_id == 1), {}),  # export; deleting a site (foreign key)
        (select(CommentRecord.id).where(CommentRecord.site_id == 1, CommentRecord.content_hash == "h"), {}),  # Akismet
        (select(CommentRecord.id).where(CommentRecord.created_at < now), {}),  # purge, stats
        (select(CommentRecord.id).where(CommentRecord.status == "hold"), {}),  # the all-sites review queue
        (select(AuditEvent.id).where(AuditEvent.comment_id == 1), {}),  # a comment's history page
    ]
    with db_engine.connect() as connection:
        for statement, parameters in lookups:
            plan = _plan(connection, statement, parameters)
            assert "SCAN comments" not in plan and "SCAN audit_log" not in plan, plan  # SQLite
            assert "Seq Scan" not in plan, plan  # PostgreSQL


def _add_copies(engine, site_id: int, count: int, *, author: str, content_hash: str) -> None:
    """`count` stored copies of one text by one author, the newest a second ago (one INSERT, many rows)."""
    from sqlalchemy import insert

    now = datetime.now(UTC)
    rows = [
        {"site_id": site_id, "created_at": now - timedelta(seconds=count - n), "content": "buy pills",
         "content_hash": content_hash, "author_name": author, "author_email": f"{author}@spam.example",
         "user_ip": "203.0.113.9", "decision": "spam", "status": "spam"}
        for n in range(count)
    ]  # fmt: skip
    with engine.begin() as connection:
        connection.execute(insert(CommentRecord), rows)


def _history_work(engine, site_id: int, author: str) -> int:
    """What one history query costs for `author`'s next copy: SQLite VM steps, or PostgreSQL rows read."""
    from moderation.policy.decision import SiteSettings
    from moderation.store.history import history_parameters, history_query

    comment = Comment(content="buy pills", author_email=f"{author}@spam.example", user_ip="203.0.113.9")
    statement = history_query(comment)
    parameters = history_parameters(site_id, comment, SiteSettings(), content_hash="h", now=datetime.now(UTC))
    with engine.connect() as connection:
        compiled = statement.compile(engine)
        values = compiled.construct_params(parameters)
        if engine.dialect.name == "sqlite":
            steps = 0

            def count_step() -> int:
                nonlocal steps
                steps += 1
                return 0

            raw = connection.connection.dbapi_connection
            raw.set_progress_handler(count_step, 1)
            try:
                connection.exec_driver_sql(compiled.string, tuple(values[n] for n in compiled.positiontup)).all()
            finally:
                raw.set_progress_handler(None, 1)
            return steps
        connection.exec_driver_sql("ANALYZE comments")
        plan = connection.exec_driver_sql(f"EXPLAIN (ANALYZE, FORMAT JSON) {compiled.string}", values).scalar()

    def nodes(node):
        yield node
        for child in node.get("Plans", []):
            yield from nodes(child)

    # Rows each scan returned plus rows it read and filtered out: what the query read.
    scans = [n for n in nodes(plan[0]["Plan"]) if "Scan" in n["Node Type"]]
    return sum((n["Actual Rows"] + n.get("Rows Removed by Filter", 0)) * n["Actual Loops"] for n in scans)


def test_a_one_author_flood_does_not_make_the_duplicate_count_dearer(db_engine, db_session):
    """The history query reads a bounded number of copies of a text: after 3,000 copies by one author it costs what
    it cost after 300 (it read every copy in the window, growing with the run, before this bound)."""
    site, _ = create_site(db_session, "Blog")
    _add_copies(db_engine, site.id, 300, author="flooder", content_hash="h")
    short_run = _history_work(db_engine, site.id, "flooder")
    _add_copies(db_engine, site.id, 2700, author="flooder", content_hash="h")
    long_run = _history_work(db_engine, site.id, "flooder")
    assert long_run < short_run * 1.2, (short_run, long_run)


def test_duplicates_from_other_authors_among_recent_copies_still_count(db_session):
    """Three authors sending one text within the window still trip the duplicate rule (the bound keeps the rule)."""
    site, _ = create_site(db_session, "Blog")
    for author in ("ann", "bob", "cy"):
        comment = Comment(content="Visit cheap-pills.example now", author_name=author)
        _record, verdict = check_comment(db_session, site, comment, model=None)
    assert "duplicate" in verdict.rules
