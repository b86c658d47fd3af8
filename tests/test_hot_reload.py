"""Hot reload: a promoted model reaches every gunicorn worker and every host sharing the database within 30 s."""

from __future__ import annotations

import time

import httpx
import pytest
from learning_helpers import save_and_register, starter_model

from benchmarks.live_server import serve, service_env
from moderation.store import db, registry
from moderation.store.schema import CommentRecord
from moderation.store.sites import create_site

RELOAD_WINDOW = 30.0


@pytest.mark.slow
def test_promotion_reaches_every_worker_and_host(tmp_path, db_url):
    """After `promote`, checks on a 3-worker server and on a second host (empty model folder) report the new version."""
    engine = db.make_engine(db_url)
    db.upgrade(engine)
    folder = tmp_path / "models-a"
    with db.make_sessionmaker(engine)() as session:
        save_and_register(session, folder, starter_model("old-1"), promote=True)
        save_and_register(session, folder, starter_model("new-2", random_state=1), promote=False)
        _, key = create_site(session, "Blog")
    headers = {"Authorization": f"Bearer {key}"}
    body = {"content": "Thanks, the second example fixed my build.", "author_name": "Ada"}

    def versions(base: str, n: int) -> set[str]:
        return {
            httpx.post(f"{base}/api/v1/comments/check", json=body, headers=headers, timeout=10).json()["model_version"]
            for _ in range(n)
        }

    with (
        serve(
            service_env(tmp_path / "a", db_url, folder, MODEL_RELOAD_SECONDS="5"), tmp_path / "a.log", workers=3
        ) as host_a,
        serve(
            service_env(tmp_path / "b", db_url, tmp_path / "models-b", MODEL_RELOAD_SECONDS="5"),
            tmp_path / "b.log",
            workers=1,
        ) as host_b,
    ):
        first, second = host_a.base, host_b.base
        assert versions(first, 12) == {"old-1"} and versions(second, 3) == {"old-1"}
        with db.make_sessionmaker(engine)() as session:
            registry.promote(session, "new-2", actor="test")
        promoted_at = time.monotonic()
        while True:
            seen = versions(first, 12) | versions(second, 3)
            if seen == {"new-2"}:
                break
            assert time.monotonic() - promoted_at < RELOAD_WINDOW, f"still serving {seen}"
            time.sleep(0.5)
        assert versions(first, 30) == {"new-2"}  # every worker, not just the first to reload
    with db.make_sessionmaker(engine)() as session:
        latest = session.query(CommentRecord).order_by(CommentRecord.id.desc()).first()
        assert latest.model_version == "new-2"
    engine.dispose()
    assert (tmp_path / "models-b" / "new-2.joblib").is_file()  # fetched from the database, hash-checked


def test_a_background_reload_shortens_the_switch_interval_only_while_it_loads(monkeypatch, tmp_path):
    """Request threads get the interpreter back within 1 ms while a new model unpickles beside them (at
    Python's 5 ms they waited up to that at every hand-over: p99 over 100 ms during refits), and the
    interval is restored afterwards, also when the load fails."""
    import sys

    from moderation.errors import ModelIntegrityError
    from moderation.web import model_holder

    seen: list[float] = []

    class Loaded:
        version = "v2"

    def fake_load(model_dir, version):
        seen.append(sys.getswitchinterval())
        if version == "broken":
            raise ModelIntegrityError("tampered")
        return Loaded()

    monkeypatch.setattr(model_holder, "load_model", fake_load)
    monkeypatch.setattr(model_holder, "_freeze_long_lived_objects", lambda: None)
    before = sys.getswitchinterval()
    holder = model_holder.ModelHolder(tmp_path)
    holder._load_in_background("v2")
    holder._load_in_background("broken")
    assert seen == [model_holder.LOADING_SWITCH_INTERVAL] * 2
    assert sys.getswitchinterval() == before
    assert isinstance(holder._model, Loaded)
