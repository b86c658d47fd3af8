"""The server's own learning loop: a daemon thread per process that refits sites' models when they are due.

Each server process runs one `SiteLearner`, started by its first request (`start_with_first_request`,
which `serving.wsgi_app` applies for `moderation serve` and `gunicorn wsgi:app` alike). Every few seconds
it asks `site_refit.due_now` whether a site has new labels worth a refit (MODERATION_SITE_REFIT_LABELS new
ones, or the oldest MODERATION_SITE_REFIT_SECONDS old): two small queries. When one has and the retrain
lock is free, it runs `python -m moderation.learning.site_refit` — a child process at a lower priority,
which takes the lock, so one worker of one host refits while the others carry on serving — and waits for
it. The published model reaches every worker through the usual hot reload (`model_holder`). A failed pass
is logged and retried at the next poll: it never takes a worker down.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from flask import Flask

from moderation import settings
from moderation.learning.retrain import RetrainOptions
from moderation.learning.site_refit import RefitPolicy, due_now, lock_is_free

log = logging.getLogger(__name__)

POLL_SECONDS = 10.0  # the longest a due site waits for a worker to notice it
CHILD_TIMEOUT_SECONDS = 3600.0  # a refit process still running after this is stuck: give up on it


class SiteLearner:
    """A daemon thread that has due sites' models refitted; `run_once` is one pass, for tests and the thread."""

    def __init__(
        self, engine: Any, database_url: str, model_dir: Path, options: RetrainOptions, policy: RefitPolicy
    ) -> None:
        self.engine = engine
        self.database_url = database_url
        self.model_dir = Path(model_dir)
        self.options = options
        self.policy = policy
        self.poll_seconds = max(0.5, min(POLL_SECONDS, policy.seconds / 2))
        # Sites whose last refit changed nothing (one class only), at their label count then: not retried
        # until the count moves, or every worker would refit them on every poll.
        self._unchanged: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the thread unless it already runs."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="site-learner", daemon=True)
            self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the thread to finish its current pass and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def run_once(self) -> dict[str, Any] | None:
        """One pass: when a site is due and the lock is free, refit in a child process and wait for it.

        Returns the child's summary (promoted, sites, version), or None when nothing was done. The
        refit runs in a process of its own at a lower priority, not on this thread: its Python-level
        work on a worker's interpreter lock made that worker's checks queue (bench_refit_latency).
        """
        if not due_now(self.engine, self.model_dir, self.options, self.policy, self._unchanged):
            return None
        if not lock_is_free(self.engine, self.model_dir):
            return None  # a retrain or another worker's refit runs: the next poll looks again
        env = {
            **os.environ,
            "MODERATION_DATABASE_URL": self.database_url,
            "MODERATION_MODEL_DIR": str(self.model_dir),
        }
        done = subprocess.run(  # noqa: S603 - this interpreter, our module, arguments we built
            [sys.executable, "-m", "moderation.learning.site_refit", json.dumps(self._unchanged)],
            env=env,
            capture_output=True,
            text=True,
            timeout=CHILD_TIMEOUT_SECONDS,
            check=False,
        )
        if done.returncode != 0:
            log.error("site model refit failed (exit %s): %s", done.returncode, done.stderr[-2000:])
            return None
        summary: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        self._unchanged = {int(site): int(n) for site, n in summary["unchanged"].items()}
        if summary["promoted"]:
            log.info("refitted the models of sites %s: serving %s", summary["sites"], summary["version"])
        return summary

    def _run(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.run_once()
            except Exception:  # a database hiccup or a full disk must not kill the thread
                log.exception("site model refit failed; retrying at the next poll")


def learner_for(app: Flask) -> SiteLearner | None:
    """`app`'s SiteLearner (made on first call), or None when MODERATION_SITE_REFIT_SECONDS is 0 (off)."""
    state = app.extensions["moderation"]
    values = state.settings
    if float(values["SITE_REFIT_SECONDS"]) <= 0:
        return None
    learner: SiteLearner | None = app.extensions.get("site_learner")
    if learner is None:
        options = RetrainOptions.from_settings(values)
        url = settings.database_url(values)
        learner = SiteLearner(state.engine, url, Path(values["MODEL_DIR"]), options, RefitPolicy.from_settings(values))
        app.extensions["site_learner"] = learner
    return learner


def start_with_first_request(app: Flask) -> None:
    """Have `app` start its learner thread on the first request each process serves (no-op when refits are off).

    Not at import: a server that loads the app and then forks its workers (gunicorn --preload, uWSGI)
    would leave the thread in the parent, where nothing serves. A request always runs in a worker.
    """
    learner = learner_for(app)
    if learner is None:
        return
    started_in: list[int] = []  # the pid that started it, so a forked worker starts its own

    def start_here() -> None:
        if not started_in or started_in[0] != os.getpid():
            started_in[:] = [os.getpid()]
            learner.start()

    app.before_request(start_here)
