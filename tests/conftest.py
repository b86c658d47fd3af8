"""Shared fixtures: the tiny inline corpus, the public corpora (skipped when absent), temp folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings
from tiny_corpus import TINY_CORPUS

from moderation.comment import LabelledComment

ROOT = Path(__file__).resolve().parent.parent

# CI replays the same fuzz examples every run (a landing must not hinge on a lucky draw); developers'
# runs explore new ones. Set HYPOTHESIS_PROFILE=ci to get CI's behaviour.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture
def tiny_corpus() -> tuple[LabelledComment, ...]:
    """The inline corpus for fast unit tests."""
    return TINY_CORPUS


def _corpora_dir() -> Path | None:
    configured = os.environ.get("MODERATION_DATA_DIR")
    candidate = Path(configured) if configured else ROOT.parent / "shared" / "datasets"
    return candidate if (candidate / "youtube-spam-collection").is_dir() else None


@pytest.fixture(scope="session")
def corpora_dir() -> Path:
    """The folder of public corpora; tests using it skip with a reason when it is absent."""
    found = _corpora_dir()
    if found is None:
        pytest.skip("public corpora not found: set MODERATION_DATA_DIR or provide ../shared/datasets")
    return found


# --- Service fixtures: a migrated database (SQLite file or a fresh PostgreSQL database), an app, a client, a key.


class _PostgresDatabases:
    """Fresh PostgreSQL databases cloned from one migrated template, dropped in the background.

    Migrating costs ~0.8 s and dropping ~1 s per database; cloning a migrated template costs ~0.2 s.
    """

    def __init__(self, base_url: str) -> None:
        import secrets
        from concurrent.futures import ThreadPoolExecutor

        from sqlalchemy import create_engine
        from sqlalchemy.engine import make_url

        self.base = make_url(base_url)
        self.admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
        self.prefix = f"mod_{secrets.token_hex(4)}"
        self.count = 0
        self.dropper = ThreadPoolExecutor(max_workers=1)
        self.template = self._create(f"{self.prefix}_template")
        from moderation.store import db

        engine = db.make_engine(self.url(self.template))
        db.upgrade(engine)
        engine.dispose()

    def url(self, name: str) -> str:
        return self.base.set(database=name).render_as_string(hide_password=False)

    def _create(self, name: str, template: str | None = None) -> str:
        from sqlalchemy import text

        clause = f' TEMPLATE "{template}"' if template else ""
        with self.admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"{clause}'))
        return name

    def fresh(self) -> str:
        """The URL of a new database migrated to head and holding no rows."""
        self.count += 1
        return self.url(self._create(f"{self.prefix}_{self.count}", self.template))

    def drop(self, url: str) -> None:
        from sqlalchemy.engine import make_url

        self.dropper.submit(self._drop, make_url(url).database)

    def _drop(self, name: str) -> None:
        from sqlalchemy import text

        with self.admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def close(self) -> None:
        self.dropper.submit(self._drop, self.template)
        self.dropper.shutdown(wait=True)
        self.admin.dispose()


@pytest.fixture(scope="session")
def _postgres_databases():
    base = os.environ.get("MODERATION_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("PostgreSQL not configured: set MODERATION_TEST_POSTGRES_URL")
    databases = _PostgresDatabases(base)
    yield databases
    databases.close()


@pytest.fixture
def postgres_url(_postgres_databases):
    """A fresh PostgreSQL database for this test (migrated, no rows), dropped afterwards; skips when not configured."""
    url = _postgres_databases.fresh()
    yield url
    _postgres_databases.drop(url)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    """A database URL with no rows: a SQLite file in tmp_path (not yet created), then a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'moderation.sqlite3'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def db_engine(db_url):
    """An engine on `db_url` with the migrations applied."""
    from moderation.store import db

    engine = db.make_engine(db_url)
    db.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def db_session(db_engine):
    """A session on the migrated test database."""
    from moderation.store import db

    with db.make_sessionmaker(db_engine)() as session:
        yield session


@pytest.fixture(scope="session")
def tiny_model():
    """A SpamModel trained on TINY_CORPUS (once per session)."""
    from moderation.core.classifier import fit_model

    return fit_model(list(TINY_CORPUS), version="tiny-1").model


@pytest.fixture
def model_dir(tmp_path, tiny_model):
    """A model folder in tmp_path holding `tiny_model`, marked current."""
    from moderation.core.model_store import save_model

    folder = tmp_path / "models"
    save_model(folder, tiny_model, data={"corpus": "tiny"}, metrics={})
    return folder


@pytest.fixture(scope="session")
def champion_model():
    """The starter-corpus model ("champion-0") the learning-loop tests start from (trained once per worker)."""
    from learning_helpers import starter_model

    return starter_model("champion-0")


@pytest.fixture
def champion_store(db_engine, db_session, tmp_path, champion_model):
    """The test database with `champion_model` saved, registered and promoted; yields (engine, session, model_dir)."""
    from learning_helpers import save_and_register

    folder = tmp_path / "models"
    save_and_register(db_session, folder, champion_model, promote=True)
    return db_engine, db_session, folder


@pytest.fixture
def app(request, db_url, tmp_path):
    """The Flask app on the test database; its model folder is `model_dir` when the test uses that, else empty."""
    from moderation.web.app import create_app

    if "model_dir" in request.fixturenames:
        model_dir = request.getfixturevalue("model_dir")
    else:
        model_dir = tmp_path / "models"
        model_dir.mkdir(exist_ok=True)
    application = create_app(
        {"TESTING": True, "DATABASE_URL": db_url, "MODEL_DIR": str(model_dir), "INSTANCE_PATH": str(tmp_path)}
    )
    yield application
    application.extensions["moderation"].engine.dispose()


@pytest.fixture
def client(app):
    """A test client for `app`."""
    return app.test_client()


@pytest.fixture
def site_key(app):
    """The plaintext API key of a fresh site in `app`'s database."""
    from moderation.store.sites import create_site

    with app.extensions["moderation"].sessions() as session:
        _, key = create_site(session, "Test blog", "https://blog.example")
    return key
