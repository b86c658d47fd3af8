"""The JSON API's check path (checking.check_and_store on precompiled statements) on real SQLite and PostgreSQL,
and the database plumbing beneath it: the SQLite write lock, WAL checkpoints between requests, pings of idle
connections."""

from __future__ import annotations

import fcntl
import os
import queue
import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import bindparam, select, text

from moderation.checking.check import check_and_store, recheck, site_settings
from moderation.comment import Comment, Decision
from moderation.errors import StoreError
from moderation.policy.decision import SiteSettings
from moderation.store import db
from moderation.store.precompiled import Precompiled
from moderation.store.schema import AuditEvent, CommentRecord, Site
from moderation.store.sites import create_site

FULL = Comment(
    content="Cheap pills http://x.top é 😀",
    author_name="Ann",
    author_email="ann@example.org",
    author_url="https://ann.example",
    user_ip="203.0.113.9",
    user_agent="Firefox",
    referrer="https://blog.example/",
    permalink="https://blog.example/post/1",
    comment_type="comment",
    language="en",
    rendered_at=datetime(2026, 1, 1, 12, 0, tzinfo=UTC),
    submitted_at=datetime(2026, 1, 1, 12, 0, 1, 500000, tzinfo=UTC),
)


def _row(engine, comment_id: int) -> tuple[dict, dict]:
    with engine.connect() as connection:
        comment = connection.execute(select(CommentRecord.__table__).where(CommentRecord.id == comment_id)).one()
        audit = connection.execute(select(AuditEvent.__table__).where(AuditEvent.comment_id == comment_id)).one()
    return comment._asdict(), audit._asdict()


def test_the_stored_row_holds_what_the_check_decided(db_engine, db_session, tiny_model):
    """Every column check_and_store writes reads back through the ORM as built, with its audit event."""
    site, _ = create_site(db_session, "Blog")
    for anonymize in (False, True):
        stored = check_and_store(
            db_engine, site.id, site_settings(site), FULL, model=tiny_model, extra={"honeypot": "x"}, is_test=True,
            anonymize_ip=anonymize,
        )  # fmt: skip
        assert stored.verdict.decision is Decision.DISCARD
        record = db_session.get(CommentRecord, stored.id)
        for name, value in stored.values.items():
            assert getattr(record, name) == value, name
        row, audit = _row(db_engine, stored.id)
        assert row["created_at"].tzinfo is not None and row["status_changed_at"] == row["created_at"]
        assert audit["at"] == row["created_at"] and audit["action"] == "comment.check"
        assert audit["detail"]["decision"] == "discard" and audit["detail"]["model_version"] == tiny_model.version
    assert row["user_ip"] == "203.0.113.0" and row["extra"] == {"honeypot_filled": True}


def test_recheck_gives_the_verdict_check_and_store_gives(db_engine, db_session, tiny_model):
    """The read-only re-check runs the same rules, history and model: its verdict equals the stored one."""
    site, _ = create_site(db_session, "Blog")
    settings = SiteSettings(flood_max=1)
    comment = Comment(content="Cheap pills http://x.top", author_name="Ann", user_ip="203.0.113.9")
    check_and_store(db_engine, site.id, settings, comment, model=tiny_model)
    with db_engine.connect() as connection:
        expected = recheck(comment, model=tiny_model, settings=settings, site_id=site.id, connection=connection)
    stored = check_and_store(db_engine, site.id, settings, comment, model=tiny_model)
    assert stored.verdict == expected and "flood" in stored.verdict.rules
    assert recheck(comment, model=tiny_model).rules == ()  # no store: no history


def test_api_path_applies_the_history_rules(db_engine, db_session):
    """Duplicates from several authors, a flood from one IP and a trusted commenter all fire on the API path."""
    site, _ = create_site(db_session, "Blog")
    settings = SiteSettings(flood_max=3)

    def check(comment: Comment):
        return check_and_store(db_engine, site.id, settings, comment, model=None).verdict

    for author in ("a", "b"):
        assert "duplicate" not in check(Comment(content="Same text", author_name=author)).rules
    assert check(Comment(content="same  TEXT", author_name="c")).decision is Decision.SPAM
    for i in range(3):
        check(Comment(content=f"burst {i}", user_ip="198.51.100.7"))
    assert "flood" in check(Comment(content="burst 4", user_ip="198.51.100.7")).rules
    first = check_and_store(db_engine, site.id, settings, Comment(content="hi", author_email="T@x.org"), model=None)
    db_session.execute(text("UPDATE comments SET status = 'approve' WHERE id = :id"), {"id": first.id})
    db_session.commit()
    assert "trusted" in check(Comment(content="again", author_email="t@x.org ")).rules


def test_api_path_failure_is_a_store_error_and_stores_nothing(db_engine, db_session):
    """When the audit insert fails the check raises StoreError and leaves no comment behind (one transaction)."""
    site, _ = create_site(db_session, "Blog")
    settings = site_settings(site)
    db_session.close()
    with db_engine.begin() as connection:
        connection.execute(text("DROP TABLE audit_log"))
    with pytest.raises(StoreError):
        check_and_store(db_engine, site.id, settings, Comment(content="hello"), model=None)
    with db_engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM comments")).scalar() == 0
    with db_engine.begin() as connection:
        AuditEvent.__table__.create(connection)
    # the pool still serves: the failed connection was rolled back, not left mid-transaction
    assert check_and_store(db_engine, site.id, settings, Comment(content="hello"), model=None).id > 0


@pytest.mark.postgres
def test_postgres_check_is_committed_when_it_returns_and_leaves_the_connection_as_it_was(postgres_url):
    """On PostgreSQL the comment is visible to another connection at once, and the pooled connection is back out
    of autocommit mode for the next user."""
    engine = db.make_engine(postgres_url)
    with db.make_sessionmaker(engine)() as session:
        site, _ = create_site(session, "Blog")
        site_id = site.id
    stored = check_and_store(engine, site_id, SiteSettings(), Comment(content="durable?"), model=None)
    other = db.make_engine(postgres_url)
    with other.connect() as connection:
        assert connection.execute(text("SELECT content FROM comments WHERE id = :i"), {"i": stored.id}).scalar() == (
            "durable?"
        )
    raw = engine.raw_connection()
    assert raw.dbapi_connection.autocommit is False
    raw.close()
    other.dispose()
    engine.dispose()


def test_precompiled_statements_refuse_sql_rendered_per_execution(db_engine):
    """An IN list is re-rendered for each execution, so it cannot be precompiled; plain parameters can."""
    with pytest.raises(ValueError, match="stays the same"):
        Precompiled(select(Site.id).where(Site.id.in_(bindparam("ids", expanding=True))), db_engine.dialect)
    query = Precompiled(select(Site.id).where(Site.name == bindparam("name")), db_engine.dialect)
    with pytest.raises(KeyError, match="name"):
        query.parameters({})


def test_sqlite_write_lock_is_exclusive_across_open_files(tmp_path):
    """While one holder has the SQLite write lock, another open file of the lock cannot take it."""
    engine = db.make_engine(f"sqlite:///{tmp_path / 'm.sqlite3'}")
    other = os.open(tmp_path / "m.sqlite3.write.lock", os.O_RDWR | os.O_CREAT)
    try:
        with db.sqlite_write_lock(engine), pytest.raises(BlockingIOError):
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free again once the block ends
    finally:
        os.close(other)
        engine.dispose()


def test_sqlite_write_lock_makes_threads_of_one_process_take_turns(tmp_path):
    """flock is shared by a process's threads, so a second thread must still wait for the first to leave."""
    engine = db.make_engine(f"sqlite:///{tmp_path / 'm.sqlite3'}")
    entered = threading.Event()

    def second_writer() -> None:
        with db.sqlite_write_lock(engine):
            entered.set()

    try:
        with db.sqlite_write_lock(engine):
            thread = threading.Thread(target=second_writer)
            thread.start()
            assert not entered.wait(0.3), "a second thread took the write lock while the first held it"
        thread.join(timeout=10)
        assert entered.is_set()
    finally:
        engine.dispose()


def test_wal_checkpoints_are_due_every_n_commits_and_empty_the_log(tmp_path):
    """Commits on the engine and noted raw commits both count; a due checkpoint copies the whole WAL back."""
    engine = db.make_engine(f"sqlite:///{tmp_path / 'm.sqlite3'}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (x INTEGER)"))
    checkpoints = db.WalCheckpoints(engine, every_commits=3)
    assert not checkpoints.due()
    with engine.connect() as connection:
        for x in (1, 2):
            connection.execute(text("INSERT INTO t VALUES (:x)"), {"x": x})
            connection.commit()
    assert not checkpoints.due()
    checkpoints.note_commit()
    assert checkpoints.due() and not checkpoints.due()
    checkpoints.run()
    with engine.connect() as connection:
        busy, frames, copied = connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
    assert busy == 0 and frames == copied
    engine.dispose()


def test_wal_checkpoints_start_runs_on_a_thread_of_their_own(tmp_path, monkeypatch):
    """`start` returns at once and the checkpoint runs on the checkpoint thread, again on every later start."""
    engine = db.make_engine(f"sqlite:///{tmp_path / 'm.sqlite3'}")
    checkpoints = db.WalCheckpoints(engine)
    ran: queue.Queue[str] = queue.Queue()
    monkeypatch.setattr(checkpoints, "run", lambda: ran.put(threading.current_thread().name))
    checkpoints.start()
    assert ran.get(timeout=30) == "wal-checkpoints"
    checkpoints.start()
    assert ran.get(timeout=30) == "wal-checkpoints"
    engine.dispose()


@pytest.mark.postgres
def test_wal_checkpoints_are_never_due_on_postgres(postgres_url):
    """PostgreSQL checkpoints itself: nothing is ever due."""
    engine = db.make_engine(postgres_url)
    checkpoints = db.WalCheckpoints(engine, every_commits=1)
    checkpoints.note_commit()
    assert not checkpoints.due()
    engine.dispose()


@pytest.mark.postgres
def test_idle_pooled_connection_killed_by_the_server_is_replaced(postgres_url, monkeypatch):
    """A pooled connection the server dropped while it sat idle is pinged on checkout and replaced, no error."""
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)
    engine = db.make_engine(postgres_url)
    with engine.connect() as connection:
        pid = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
    admin = db.make_engine(postgres_url)
    with admin.connect() as connection:
        connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT pg_backend_pid()").scalar() != pid
    admin.dispose()
    engine.dispose()


def test_api_answers_carry_no_session_cookie(client, site_key):
    """A check neither sets a session cookie nor varies on Cookie: API clients have no session."""
    response = client.post(
        "/api/v1/comments/check", json={"content": "hi"}, headers={"Authorization": f"Bearer {site_key}"}
    )
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers and "Cookie" not in response.headers.get("Vary", "")


def test_loading_a_model_freezes_what_is_alive(model_dir):
    """After a model loads, the objects alive then (the model among them) are left out of garbage collections."""
    import gc

    from moderation.web.model_holder import ModelHolder

    gc.unfreeze()
    holder = ModelHolder(model_dir)
    assert holder.get() is not None
    assert gc.get_freeze_count() > 0
