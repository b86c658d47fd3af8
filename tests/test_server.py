"""Real `moderation serve` processes (gunicorn) answering real HTTP: restarts keep data, hosts share PostgreSQL."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from moderation import db
from moderation.sites import create_site

MODERATION = str(Path(sys.executable).parent / "moderation")
HAM = {"content": "Thanks for the write-up, the second chart cleared it up for me.", "author_name": "Dana"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def server(env: dict[str, str], *, workers: int = 2, ready_timeout: float = 120.0) -> Iterator[str]:
    """Run `moderation serve` on a free port until the block ends; yields its base URL once /healthz answers."""
    port = free_port()
    process = subprocess.Popen(
        [MODERATION, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers), "--no-access-log"],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ready_timeout
        while True:
            if process.poll() is not None:
                pytest.fail(
                    f"server exited with {process.returncode}:\n{process.stdout.read() if process.stdout else ''}"
                )
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("server did not answer /healthz in time")
            time.sleep(0.2)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _env(tmp_path: Path, database_url: str, model_dir: Path, *, train: bool = False) -> dict[str, str]:
    return {
        "MODERATION_DATABASE_URL": database_url,
        "MODERATION_MODEL_DIR": str(model_dir),
        "MODERATION_INSTANCE_PATH": str(tmp_path / "instance"),
        "MODERATION_TRAIN_ON_START": "true" if train else "false",
        "MODERATION_DATA_DIR": "",
        "MODERATION_RATELIMIT_CHECK": "",
    }


def _new_site(database_url: str) -> str:
    engine = db.make_engine(database_url)
    db.upgrade(engine)
    with db.make_sessionmaker(engine)() as session:
        _, key = create_site(session, "Blog")
    engine.dispose()
    return key


@pytest.mark.slow
def test_first_serve_trains_a_model_and_data_survives_a_restart(tmp_path):
    """With no model the first serve trains one; a checked comment and its label survive a restart (SQLite file)."""
    url = f"sqlite:///{tmp_path / 'moderation.sqlite3'}"
    key = _new_site(url)
    headers = {"Authorization": f"Bearer {key}"}
    models = tmp_path / "models"
    with server(_env(tmp_path, url, models, train=True), ready_timeout=600) as base:
        ready = httpx.get(f"{base}/readyz").json()
        assert ready["ok"] is True and ready["checks"]["model"]
        checked = httpx.post(f"{base}/api/v1/comments/check", json=HAM, headers=headers).json()
        assert checked["model_version"] == ready["checks"]["model"]
        httpx.post(f"{base}/api/v1/comments/{checked['id']}/feedback", json={"label": "ham"}, headers=headers)
    trained = sorted(p.name for p in models.iterdir())
    with server(_env(tmp_path, url, models, train=True)) as base:
        shown = httpx.get(f"{base}/api/v1/comments/{checked['id']}", headers=headers).json()
        metrics = httpx.get(f"{base}/metrics").text
    assert sorted(p.name for p in models.iterdir()) == trained  # no second training
    assert (shown["status"], [lab["label"] for lab in shown["labels"]]) == ("approve", ["ham"])
    assert shown["decision"] == checked["decision"]
    assert "moderation_http_requests_total" in metrics


@pytest.mark.postgres
@pytest.mark.slow
def test_two_hosts_share_one_postgres_database(tmp_path, postgres_url, model_dir):
    """A comment checked through one server is visible and labelled through another on the same PostgreSQL."""
    key = _new_site(postgres_url)
    headers = {"Authorization": f"Bearer {key}"}
    with (
        server(_env(tmp_path / "a", postgres_url, model_dir), workers=1) as first,
        server(_env(tmp_path / "b", postgres_url, model_dir), workers=1) as second,
    ):
        assert first != second
        checked = httpx.post(f"{first}/api/v1/comments/check", json=HAM, headers=headers).json()
        seen = httpx.get(f"{second}/api/v1/comments/{checked['id']}", headers=headers).json()
        assert seen["id"] == checked["id"] and seen["decision"] == checked["decision"]
        labelled = httpx.post(
            f"{second}/api/v1/comments/{checked['id']}/feedback", json={"label": "spam"}, headers=headers
        ).json()
        assert labelled["status"] == "spam"
        back = httpx.get(f"{first}/api/v1/comments/{checked['id']}", headers=headers).json()
        assert back["status"] == "spam" and [lab["label"] for lab in back["labels"]] == ["spam"]
