"""Serving: a first model when there is none, and the gunicorn server that runs the app."""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any

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


# Threads per worker (MODERATION_THREADS, default 1: gunicorn's sync worker). Threads share one GIL, so
# they only pay when a check waits: bench_http, 2 workers, wrk c=8, PostgreSQL on this machine's disk
# (quiet, 4 runs each): 1 thread 886-973 checks/s, p99 11-20 ms; 4 threads 1,006-1,102/s, p99 17-68 ms
# (most likely the threads of one process queueing for the GIL). With the disk of an earlier machine
# (8-10 ms per commit) one thread per worker capped PostgreSQL at 170 checks/s; there threads help.
def run_gunicorn(host: str, port: int, workers: int, *, threads: int = 1, extra: dict[str, Any] | None = None) -> None:
    """Serve `create_app()` with gunicorn until stopped: sync workers, or with `threads` > 1 gthread. Blocks."""
    from gunicorn.app.base import BaseApplication

    options: dict[str, Any] = {
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": "sync" if threads == 1 else "gthread",
        "threads": threads,
        "accesslog": "-",
        "timeout": 30,
        "graceful_timeout": 10,
        "child_exit": _child_exit,
        "post_worker_init": _start_learning,
        "logger_class": _redacting_logger(),
        **(extra or {}),
    }

    class Server(BaseApplication):
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            return create_app()

    Server().run()


# Akismet clients may carry the API key in the URL (/k/<key>/..., ?key=, ?api_key=): access logs keep "***".
_KEY_IN_URL = re.compile(r"(/k/)[^/?\s]{1,256}|([?&](?:api_)?key=)[^&\s]{0,256}")


def redact_url(text: str) -> str:
    """`text` (a request line, path or query string) with any API key in it replaced by "***"."""
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


def _start_learning(worker: Any) -> None:
    """In each new worker: start the thread that refits sites' models when they have new labels (site_learner)."""
    site_learner.start_for(worker.wsgi)


def _child_exit(_server: Any, worker: Any) -> None:
    """Tell prometheus_client a worker is gone so its live gauges stop counting."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
