"""The database connection: engines for SQLite and PostgreSQL, sessions, and Alembic migrations.

SQLite is the embedded default. It gets WAL (readers never block the writer), a busy timeout (several
gunicorn workers write to one file) and foreign keys (off by default in SQLite). PostgreSQL is for
several workers or hosts sharing one database. Migrations run programmatically from the package, so an
installed `moderation` needs no alembic.ini on disk.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

from filelock import FileLock
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from moderation.errors import ConfigError, StoreError

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

# Workers wait this long for SQLite's write lock before failing; a check holds it for about a millisecond.
SQLITE_BUSY_TIMEOUT_MS = 5000
# A pooled connection idle longer than this is pinged before use (the database may have restarted since);
# one in steady use is not: pinging on every checkout cost a round trip (PostgreSQL) or a statement (SQLite)
# per request. A connection that dies under load fails its request with a 503 and the pool starts afresh.
PING_AFTER_IDLE_SECONDS = 1.0
# SQLite checkpoints inside a commit once the WAL holds this many pages (its default is 1000); the
# service checkpoints between requests long before (WalCheckpoints), so this only catches stragglers.
SQLITE_WAL_AUTOCHECKPOINT_PAGES = 4000
# A worker checkpoints after this many of its commits: with 2 workers ~5 checks, ~55 WAL pages apart (a
# check writes ~11). Small checkpoints often beat big ones rarely for the check's tail latency
# (docs/experiments.md: WAL checkpoint every 10 commits).
WAL_CHECKPOINT_EVERY_COMMITS = 10
# pg_advisory_xact_lock key serialising migrations (any constant unique to this application).
MIGRATION_LOCK_KEY = 0x6D6F6465


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # NORMAL is durable across application crashes in WAL mode; only a power loss can drop the last commits.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA wal_autocheckpoint={SQLITE_WAL_AUTOCHECKPOINT_PAGES}")
    cursor.close()


def _mark_checkin(_dbapi_connection: Any, record: Any) -> None:
    record.info["idle_since"] = time.monotonic()


def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any, *, dialect: Any) -> None:
    """Pessimistic disconnect handling for idle connections only: a failed ping makes the pool reconnect."""
    idle_since = record.info.get("idle_since")
    if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
        return
    try:
        dialect.do_ping(dbapi_connection)
    except Exception as exc:  # whatever the driver raises for a dead connection
        raise DisconnectionError(f"stale pooled connection: {type(exc).__name__}") from exc


def _ping_idle_connections(engine: Engine) -> Engine:
    event.listen(engine, "checkin", _mark_checkin)
    event.listen(engine, "checkout", partial(_ping_if_idle, dialect=engine.dialect))
    return engine


def make_engine(url: str) -> Engine:
    """An engine for `url` (SQLite: WAL, busy timeout, foreign keys; all: idle connections pinged).

    Bad URL → ConfigError. The pool hands out the most recently used connection first (LIFO), so a
    worker keeps reusing one warm connection: SQLite drops a connection's page cache whenever another
    connection wrote since its last use, which a first-in-first-out pool of two makes happen every request.
    """
    try:
        parsed = make_url(url)
    except Exception as exc:  # sqlalchemy raises ArgumentError and others for a malformed URL
        raise ConfigError(f"DATABASE_URL: expected a SQLAlchemy URL, found {url!r}") from exc
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, pool_use_lifo=True, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", _sqlite_pragmas)
        return _ping_idle_connections(engine)
    try:
        return _ping_idle_connections(create_engine(parsed, pool_use_lifo=True, pool_size=5, max_overflow=10))
    except Exception as exc:  # missing driver, unknown dialect
        raise ConfigError(f"DATABASE_URL: cannot use {parsed.render_as_string(hide_password=True)}: {exc}") from exc


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Sessions bound to `engine`; objects stay readable after commit (views render them afterwards)."""
    return sessionmaker(bind=engine, expire_on_commit=False)


def alembic_config(engine: Engine) -> Any:
    """An Alembic Config pointing at the packaged migrations, using `engine`'s URL."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%"))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database to `revision` (default: the newest). Unreachable database → StoreError."""
    from alembic import command

    config = alembic_config(engine)
    try:
        with _migration_lock(engine), engine.begin() as connection:
            if engine.dialect.name == "postgresql":
                # Workers and hosts starting together: one migrates, the others wait and then find it done.
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot migrate the database at {engine.url!r}: {exc}") from exc


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    """For a SQLite file, a lock file beside it so concurrent workers migrate one after another."""
    database = engine.url.database or ""
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    with FileLock(f"{database}.migrate.lock", timeout=60):
        yield


@contextmanager
def sqlite_write_lock(engine: Engine) -> Iterator[None]:
    """For a SQLite file, hold an exclusive flock on `<database>.write.lock` for the block; else nothing.

    SQLite's own busy handler polls a taken write lock with sleeps of 1, 2, 5, 10 ... ms, however soon
    the lock comes free: two workers writing at once would make one of them sleep on most collisions. A
    writer waiting on flock is woken the moment the holder releases it. Writers that do not take this
    lock (the CLI, migrations) still wait through SQLite's busy timeout.
    """
    path = _write_lock_path(engine.dialect.name, engine.url.database or "")
    if path is None:
        yield
        return
    # flock belongs to the open file, which the process's threads share: a second thread's LOCK_EX would
    # succeed at once. The threads take turns on a thread lock first (gthread workers, MODERATION_THREADS).
    descriptor, in_process = _lock_descriptor(path)
    with in_process:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)


class WalCheckpoints:
    """Checkpoints of a SQLite database's WAL, run between requests rather than inside a commit.

    SQLite checkpoints (copies the WAL back into the database, with two fsyncs) in whichever commit
    finds the WAL over its threshold, and that commit then takes many times longer than a plain one
    (docs/experiments.md: SQLite WAL checkpoints between requests, on a thread). This counts the
    process's commits on the engine and says when a checkpoint is `due`, well before SQLite's own
    threshold (SQLITE_WAL_AUTOCHECKPOINT_PAGES, the safety net for every other process); the app has it
    `start`ed on a thread of its own. Passive: writers are never blocked. Other databases: never due.
    """

    def __init__(self, engine: Engine, every_commits: int = WAL_CHECKPOINT_EVERY_COMMITS) -> None:
        self.engine = engine
        self.every_commits = every_commits if engine.dialect.name == "sqlite" else 0
        self._commits = 0
        self._wanted = threading.Event()
        self._thread: threading.Thread | None = None
        self._starting = threading.Lock()  # a threaded worker's requests may call `start` together
        if self.every_commits:
            event.listen(engine, "commit", self._count)

    def _count(self, _connection: Any) -> None:
        self.note_commit()

    def note_commit(self) -> None:
        """Count a commit made outside SQLAlchemy's Connection (on a raw DBAPI connection)."""
        self._commits += 1

    def due(self) -> bool:
        """True, once, when this process made `every_commits` commits since the last checkpoint."""
        if not self.every_commits or self._commits < self.every_commits:
            return False
        self._commits = 0
        return True

    def start(self) -> None:
        """Run a checkpoint on this process's checkpoint thread (started on first use) and return at once.

        A checkpoint is mostly waiting on its two fsyncs, with the GIL released: run inline after a
        response, that wait would keep the worker from its next request; on a thread it overlaps the
        requests that follow. A request while one runs is merged into the next one.
        """
        self._wanted.set()
        with self._starting:
            if self._thread is None or not self._thread.is_alive():  # also after a fork: threads do not survive it
                self._thread = threading.Thread(target=self._serve, name="wal-checkpoints", daemon=True)
                self._thread.start()

    def _serve(self) -> None:
        while True:
            self._wanted.wait()
            self._wanted.clear()
            self.run()

    def run(self) -> None:
        """A passive checkpoint; a failure is logged, never raised (the next one, or SQLite's own, catches up)."""
        try:
            with self.engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
        except SQLAlchemyError as exc:
            log.warning("WAL checkpoint failed: %s", exc)


@lru_cache(maxsize=16)
def _write_lock_path(dialect: str, database: str) -> str | None:
    """The write lock file of a SQLite database file, or None (other databases, in-memory and URI databases).

    Cached: resolving it (a realpath, several system calls) on every check showed in the check's profile
    (docs/experiments.md: SQLite write-lock path resolved once).
    """
    if dialect != "sqlite" or not database or database == ":memory:" or database.startswith("file:"):
        return None
    return str(Path(database).resolve()) + ".write.lock"


_lock_descriptors: dict[tuple[int, str], tuple[int, threading.Lock]] = {}
_lock_descriptors_guard = threading.Lock()


def _lock_descriptor(path: str) -> tuple[int, threading.Lock]:
    """A file descriptor of `path` opened once per process (a forked worker opens its own: flock is per open),
    and the lock its threads take turns on."""
    key = (os.getpid(), path)
    found = _lock_descriptors.get(key)
    if found is None:
        with _lock_descriptors_guard:
            found = _lock_descriptors.get(key)
            if found is None:
                found = _lock_descriptors[key] = (os.open(path, os.O_RDWR | os.O_CREAT, 0o600), threading.Lock())
    return found


def current_revision(engine: Engine) -> str | None:
    """The Alembic revision the database is at, or None when it was never migrated."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def ping(engine: Engine) -> str | None:
    """None when the database answers a trivial query, else why not (for /readyz)."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        return f"database unreachable: {type(exc).__name__}: {str(exc).splitlines()[0]}"
    return None
