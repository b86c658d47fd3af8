"""Serving: a first model when there is none, and the gunicorn server that runs the app."""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any

from flask import Flask

from moderation.core.model_store import current_version
from moderation.core.training import train_and_save
from moderation.web import site_learner
from moderation.web.app import create_app

log = logging.getLogger(__name__)


def ensure_model(model_dir: Path, data_dir: Path | None, *, progress: Any = print) -> str | None:
    """Train and save a model when `model_dir` has none; returns the new version, or None if one existed."""
    if current_version(model_dir) is not None:
        return None
    progress(f"no model in {model_dir}: training one on the starter corpus{f' + {data_dir}' if data_dir else ''}")
    manifest = train_and_save(model_dir, data_dir, progress=progress)
    return str(manifest.version)


def prometheus_dir(instance_path: Path) -> Path:
    """A fresh folder for prometheus_client's multiprocess files (emptied: old workers' values are stale)."""
    folder = Path(instance_path).resolve() / "prometheus"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# Threads per worker (MODERATION_THREADS, default 64: gunicorn's gthread worker). A connection holds a
# thread only while its request is being read and answered (gthread parks idle and silent connections on
# its poller), so a client trickling a request's bytes holds one thread for as long as it likes; a sync
# worker is one such thread, and two slow clients took the default two-worker server offline. With 64 a
# worker keeps answering with 50 of them open on it alone (docs/experiments.md: gthread with 64 threads
# against slow clients). Threads beyond those busy with requests are never started, and the GIL lets one
# run at a time; 1 thread means the sync worker, for a server behind a buffering proxy.
DEFAULT_THREADS = 64
# Seconds a kept-alive connection, or one that has sent nothing yet, may stay idle on gthread's poller.
KEEPALIVE_SECONDS = 5


def gunicorn_options(
    host: str,
    port: int,
    workers: int,
    *,
    threads: int = DEFAULT_THREADS,
    control_socket: str = "",
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """gunicorn's settings for `run_gunicorn`: gthread workers, or with `threads` == 1 sync; a control socket
    only at `control_socket` (empty: none, so servers sharing a machine never share gunicorn's default path)."""
    control: dict[str, Any] = (
        {"control_socket": str(Path(control_socket).resolve())} if control_socket else {"control_socket_disable": True}
    )
    return {
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": "sync" if threads == 1 else "gthread",
        "threads": threads,
        "keepalive": KEEPALIVE_SECONDS,
        "accesslog": "-",
        "timeout": 30,
        "graceful_timeout": 10,
        "child_exit": _child_exit,
        "logger_class": _redacting_logger(),
        **control,
        **(extra or {}),
    }


def run_gunicorn(
    host: str,
    port: int,
    workers: int,
    *,
    threads: int = DEFAULT_THREADS,
    control_socket: str = "",
    extra: dict[str, Any] | None = None,
) -> None:
    """Serve `wsgi_app()` with gunicorn (options from `gunicorn_options`) until stopped. Blocks."""
    from gunicorn.app.base import BaseApplication

    options = gunicorn_options(host, port, workers, threads=threads, control_socket=control_socket, extra=extra)

    class Server(BaseApplication):
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            return wsgi_app()

    Server().run()


def wsgi_app(test_config: dict[str, Any] | None = None) -> Flask:
    """The app a server runs (`moderation serve`, or `gunicorn wsgi:app` and any other WSGI server): the app,
    and in each process that serves it the learner that refits sites' models when they have new labels."""
    app = create_app(test_config)
    site_learner.start_with_first_request(app)
    return app


def _spelled(text: str) -> str:
    """A pattern matching `text` with any of its characters percent-encoded, in either case."""

    def one(char: str) -> str:
        forms = {re.escape(char.lower()), re.escape(char.upper())}
        forms |= {f"%{ord(c):02x}" for c in (char.lower(), char.upper())}
        forms |= {f"%{ord(c):02X}" for c in (char.lower(), char.upper())}
        return "(?:" + "|".join(sorted(forms)) + ")"

    return "".join(one(char) for char in text)


# Akismet clients may carry the API key in the URL (/k/<key>/..., ?key=, ?api_key=): access logs keep "***".
# The server decodes percent-escapes before routing and parsing (`/%6B/KEY/`, `?%6Bey=`, `?api%5Fkey=`,
# `/k%2FKEY/` all carry a key), so the log's raw text is matched in every such spelling.
_SLASH = f"(?:/|{_spelled('/')})"
_KEY_IN_URL = re.compile(
    rf"({_SLASH}{_spelled('k')}{_SLASH})(?:(?!{_SLASH})[^?\s]){{1,256}}"
    rf"|([?&](?:{_spelled('api_')})?{_spelled('key')}=)[^&\s]{{0,256}}"
)


def redact_url(text: str) -> str:
    """`text` (a request line, path, query string or URL) with any API key in it replaced by "***"."""
    return _KEY_IN_URL.sub(lambda m: (m.group(1) or m.group(2)) + "***", text)


def _redacting_logger() -> type:
    """A gunicorn Logger whose access-log fields never contain an API key or an Authorization header."""
    from gunicorn.glogging import Logger

    class RedactingLogger(Logger):
        def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
            atoms = super().atoms(resp, req, environ, request_time)
            for name, value in atoms.items():
                if "authorization" in name:
                    atoms[name] = "***"
                elif isinstance(value, str):
                    atoms[name] = redact_url(value)
            if atoms.get("q"):  # the bare query string: "key=..." at its start has no "?" before it
                atoms["q"] = redact_url("?" + atoms["q"])[1:]
            return atoms

    return RedactingLogger


def _child_exit(_server: Any, worker: Any) -> None:
    """Tell prometheus_client a worker is gone so its live gauges stop counting."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
