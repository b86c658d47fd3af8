"""A real `moderation serve` (gunicorn) process, the one way tests and benchmarks start a server.

serve(env, log)            run it on a free loopback port for a block; yields once it answers
service_env(...)           the MODERATION_* environment for a given database and model folder
new_site_key(url)          migrate a database, add a site, return its API key
fresh_postgres_database()  an empty PostgreSQL database beside a given one, and how to drop it
children, rss_kib          the master's workers and their memory, from /proc
in_process(folder, ...)    no server: the app in this process on SQLite, one site, Flask's test client
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from moderation.store import db
from moderation.store.sites import create_site

MODERATION = str(Path(sys.executable).parent / "moderation")


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A running `moderation serve`: its base URL, master process and combined stdout/stderr log file."""

    base: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        """Everything the server printed so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def workers(self) -> list[int]:
        """The pids of the master's live worker processes."""
        return children(self.process.pid)


def service_env(tmp_path: Path, database_url: str, model_dir: Path, **overrides: str) -> dict[str, str]:
    """The MODERATION_* environment for a server on `database_url` with `model_dir` and no training."""
    env = {
        "MODERATION_DATABASE_URL": database_url,
        "MODERATION_MODEL_DIR": str(model_dir),
        "MODERATION_INSTANCE_PATH": str(tmp_path / "instance"),
        "MODERATION_TRAIN_ON_START": "false",
        "MODERATION_DATA_DIR": "",
        "MODERATION_RATELIMIT_SITE": "",
    }
    env.update({f"MODERATION_{k}": v for k, v in overrides.items()})
    return env


@contextmanager
def serve(
    env: dict[str, str],
    log_path: Path,
    *,
    workers: int = 2,
    access_log: bool = False,
    ready_timeout: float = 60.0,
    ready_path: str = "/healthz",
) -> Iterator[Server]:
    """Run `moderation serve` on a free loopback port until the block ends; yields once `ready_path` answers 200.

    `/readyz` waits for a model in the first worker that answers, `/healthz` only for the process.
    """
    port = free_port()
    command = [MODERATION, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    command.append("--access-log" if access_log else "--no-access-log")
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(command, env={**os.environ, **env}, stdout=log_file, stderr=subprocess.STDOUT)
    server = Server(f"http://127.0.0.1:{port}", process, log_path)
    try:
        deadline = time.monotonic() + ready_timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited with {process.returncode}:\n{server.log()}")
            try:
                if httpx.get(f"{server.base}{ready_path}", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server did not answer {ready_path} in {ready_timeout} s:\n{server.log()}")
            time.sleep(0.1)
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class InProcess:
    """The app in this process: Flask's test client, its state (engine, sessions), one site, that site's auth."""

    client: Any
    state: Any
    site: Any
    headers: dict[str, str]


@contextmanager
def in_process(folder: Path, model_dir: Path, site_name: str) -> Iterator[InProcess]:
    """The app on a new SQLite file in `folder` serving `model_dir`, no site rate limit, one site named `site_name`.

    The engine is disposed after the block. Raises what `create_app` raises (a bad model folder: ModelError).
    """
    from moderation.web.app import create_app

    app = create_app(
        {
            "DATABASE_URL": f"sqlite:///{folder / 'moderation.sqlite3'}",
            "MODEL_DIR": str(model_dir),
            "INSTANCE_PATH": str(folder),
            "RATELIMIT_SITE": "",
            "TESTING": True,
        }
    )
    state = app.extensions["moderation"]
    with state.sessions() as session:
        site, key = create_site(session, site_name)
    try:
        yield InProcess(app.test_client(), state, site, {"Authorization": f"Bearer {key}"})
    finally:
        state.engine.dispose()


def new_site_key(database_url: str) -> str:
    """Migrate the database at `database_url`, add a site and return its plaintext API key."""
    engine = db.make_engine(database_url)
    db.upgrade(engine)
    with db.make_sessionmaker(engine)() as session:
        _, key = create_site(session, "Blog")
    engine.dispose()
    return key


def fresh_postgres_database(base_url: str) -> tuple[str, Callable[[], None]]:
    """Create an empty database on `base_url`'s server; returns its URL and a function that drops it."""
    import secrets

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"mod_bench_{secrets.token_hex(4)}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return make_url(base_url).set(database=name).render_as_string(hide_password=False), drop


def children(pid: int) -> list[int]:
    """Pids whose parent is `pid` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may contain spaces; fields after it are fixed.
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return sorted(found)


def rss_kib(pid: int) -> int:
    """Resident set size of `pid` in KiB (VmRSS from /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise ValueError(f"no VmRSS for pid {pid}")


def wait_for(predicate, timeout: float, interval: float = 0.1) -> bool:
    """Poll `predicate` until it is true or `timeout` seconds pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
