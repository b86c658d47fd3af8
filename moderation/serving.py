"""Serving: the model a worker uses (loaded lazily, reloaded when promoted) and the gunicorn server.

Each gunicorn worker has its own ModelHolder. It loads the current model from MODEL_DIR on first use
and looks for a newly promoted one every MODEL_RELOAD_SECONDS; a model that fails to load (tampered,
incompatible) is refused and the previous one, if any, keeps serving, so a bad promotion cannot take a
worker down. While no model is loaded the service holds every comment for review.
"""

from __future__ import annotations

import gc
import logging
import os
import re
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from .errors import ModerationError

log = logging.getLogger(__name__)


class ModelHolder:
    """The current SpamModel of one process, or None with the reason why not."""

    def __init__(self, model_dir: Path | str, reload_seconds: float = 10.0, engine: Any | None = None) -> None:
        self.model_dir = Path(model_dir)
        self.reload_seconds = reload_seconds
        # With an engine, the champion in the database's model registry decides which version to serve
        # (fetched into model_dir when this host lacks it); without one, or while nothing was ever
        # promoted, the CURRENT file of model_dir does.
        self.engine = engine
        self._model: Any | None = None
        self._checked_at = float("-inf")
        self._problem = "no model loaded yet"
        self._lock = threading.Lock()

    def get(self) -> Any | None:
        """The current model (loading or reloading it when due), or None when there is none."""
        if time.monotonic() - self._checked_at >= self.reload_seconds:
            self._refresh()
        return self._model

    def problem(self) -> str | None:
        """Why no model is loaded (after trying), or None when one is."""
        self.get()
        return None if self._model is not None else self._problem

    def set(self, model: Any | None) -> None:
        """Use `model` (tests and benchmarks); it stays until a different version becomes current."""
        with self._lock:
            self._model = model
            self._checked_at = time.monotonic()

    def _refresh(self) -> None:
        from .model_store import current_version, load_model

        with self._lock:
            if time.monotonic() - self._checked_at < self.reload_seconds:
                return  # another thread refreshed while we waited
            self._checked_at = time.monotonic()
            try:
                version = self._champion() or current_version(self.model_dir)
            except (OSError, ModerationError) as exc:
                self._problem = f"model folder {self.model_dir} unreadable: {exc}"
                return
            if version is None:
                if self._model is None:
                    self._problem = f"no model loaded: {self.model_dir} has no trained model (run `moderation train`)"
                return
            if self._model is not None and getattr(self._model, "version", None) == version:
                return
            try:
                model = load_model(self.model_dir, version)
            except (OSError, ModerationError) as exc:
                self._problem = f"no model loaded: {exc}"
                log.error("refusing model %s: %s", version, exc)
                return
            log.info("loaded model %s from %s", version, self.model_dir)
            self._model = model
            _freeze_long_lived_objects()

    def _champion(self) -> str | None:
        """The registry's champion, fetched into model_dir when missing; None without a registry or champion.

        A database or fetch failure is logged and answers None, so the model in use keeps serving.
        """
        if self.engine is None:
            return None
        from sqlalchemy.exc import SQLAlchemyError

        from . import registry

        try:
            version = registry.champion_version(self.engine)
            if version is None:
                return None
            if self._model is not None and getattr(self._model, "version", None) == version:
                return version
            from sqlalchemy.orm import Session

            with Session(self.engine) as session:
                registry.fetch_artifact(session, version, self.model_dir)
            return version
        except (SQLAlchemyError, OSError, ModerationError) as exc:
            log.error("cannot read the model registry, keeping the model in use: %s", exc)
            return None


def _freeze_long_lived_objects() -> None:
    """Exclude everything alive now (the model, the app) from the garbage collector's future passes.

    A model is ~100k tracked objects; a full collection walking them took 80-110 ms of CPU (measured
    in-process on our loaded 2-core machine), a stall for whichever request triggers it. Frozen
    objects are still freed by reference counting; unfreezing first lets the collection below reclaim
    a replaced model's reference cycles.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def ensure_model(model_dir: Path, data_dir: Path | None, *, progress: Any = print) -> str | None:
    """Train and save a model when `model_dir` has none; returns the new version, or None if one existed."""
    from .model_store import current_version
    from .training import train_and_save

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
        "logger_class": _redacting_logger(),
        **(extra or {}),
    }

    class Server(BaseApplication):
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            from .app import create_app

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


def _child_exit(_server: Any, worker: Any) -> None:
    """Tell prometheus_client a worker is gone so its live gauges stop counting."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
