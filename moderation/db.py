"""The database connection: engines for SQLite and PostgreSQL, sessions, and Alembic migrations.

SQLite is the embedded default. It gets WAL (readers never block the writer), a busy timeout (several
gunicorn workers write to one file) and foreign keys (off by default in SQLite). PostgreSQL is for
several workers or hosts sharing one database. Migrations run programmatically from the package, so an
installed `moderation` needs no alembic.ini on disk.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from .errors import ConfigError, StoreError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

# Workers wait this long for SQLite's write lock before failing; a check holds it for about a millisecond.
SQLITE_BUSY_TIMEOUT_MS = 5000
# pg_advisory_xact_lock key serialising migrations (any constant unique to this application).
MIGRATION_LOCK_KEY = 0x6D6F6465


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # NORMAL is durable across application crashes in WAL mode; only a power loss can drop the last commits.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine for `url` (SQLite: WAL, busy timeout, foreign keys; all: pre-ping). Bad URL → ConfigError."""
    try:
        parsed = make_url(url)
    except Exception as exc:  # sqlalchemy raises ArgumentError and others for a malformed URL
        raise ConfigError(f"DATABASE_URL: expected a SQLAlchemy URL, found {url!r}") from exc
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, pool_pre_ping=True, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    try:
        return create_engine(parsed, pool_pre_ping=True, pool_size=5, max_overflow=10)
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
    from filelock import FileLock

    with FileLock(f"{database}.migrate.lock", timeout=60):
        yield


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
