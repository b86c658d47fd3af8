"""The model a worker uses: loaded lazily, reloaded when the registry promotes another.

Each gunicorn worker has its own ModelHolder. It loads the current model from MODEL_DIR on first use
and looks for a newly promoted one every MODEL_RELOAD_SECONDS, loading it on a thread while the model in
use keeps serving; a model that fails to load (tampered, incompatible) is refused and the previous one,
if any, keeps serving, so a bad promotion cannot take a worker down. While no model is loaded the
service holds every comment for review.
"""

from __future__ import annotations

import gc
import logging
import sys
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from moderation.core.model_store import current_version, load_model
from moderation.errors import ModerationError
from moderation.store import registry

log = logging.getLogger(__name__)

# The GIL switch interval while a model loads beside the request threads (Python's default: 5 ms). joblib
# unpickles in pure Python, so at 5 ms every hand-over to a request thread waited up to that long
# (docs/experiments.md: the model reload during site refits).
LOADING_SWITCH_INTERVAL = 0.001


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
        self._loading: threading.Thread | None = None

    def get(self) -> Any | None:
        """The current model (loading or reloading it when due), or None when there is none."""
        if time.monotonic() - self._checked_at >= self.reload_seconds:
            self._refresh()
        return self._model

    def problem(self) -> str | None:
        """Why no model is loaded (after trying), or None when one is."""
        self.get()
        return None if self._model is not None else self._problem

    def wait(self, timeout: float = 30.0) -> None:
        """Wait for a model being loaded in the background, if any (tests)."""
        loading = self._loading
        if loading is not None:
            loading.join(timeout)

    def set(self, model: Any | None) -> None:
        """Use `model` (tests and benchmarks); it stays until a different version becomes current."""
        with self._lock:
            self._model = model
            self._checked_at = time.monotonic()

    def _refresh(self) -> None:
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
            if self._model is None:
                self._load(version)
                return
            if self._loading is None or not self._loading.is_alive():
                # The model in use keeps serving while the new one loads: unpickling takes ~0.4 s, which
                # in the request that noticed the promotion was the p99 of every refit (bench_refit_latency).
                self._loading = threading.Thread(target=self._load_in_background, args=(version,), daemon=True)
                self._loading.start()

    def _load_in_background(self, version: str) -> None:
        with self._lock:
            if self._model is not None and getattr(self._model, "version", None) == version:
                return
        previous = sys.getswitchinterval()
        sys.setswitchinterval(min(previous, LOADING_SWITCH_INTERVAL))
        try:
            model = load_model(self.model_dir, version)
        except (OSError, ModerationError) as exc:
            self._problem = f"no model loaded: {exc}"
            log.error("refusing model %s: %s", version, exc)
            return
        finally:
            sys.setswitchinterval(previous)
        with self._lock:
            self._install(version, model)

    def _load(self, version: str) -> None:
        """Load `version` now (the caller holds the lock); a model that fails to load is refused and logged."""
        try:
            model = load_model(self.model_dir, version)
        except (OSError, ModerationError) as exc:
            self._problem = f"no model loaded: {exc}"
            log.error("refusing model %s: %s", version, exc)
            return
        self._install(version, model)

    def _install(self, version: str, model: Any) -> None:
        log.info("loaded model %s from %s", version, self.model_dir)
        self._model = model
        _freeze_long_lived_objects()

    def _champion(self) -> str | None:
        """The registry's champion, fetched into model_dir when missing; None without a registry or champion.

        A database or fetch failure is logged and answers None, so the model in use keeps serving.
        """
        if self.engine is None:
            return None
        try:
            version = registry.champion_version(self.engine)
            if version is None:
                return None
            if self._model is not None and getattr(self._model, "version", None) == version:
                return version
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
