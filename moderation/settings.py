"""Every setting, declared once as data with its default and help text.

Values come from `MODERATION_<NAME>` environment variables. The README documents each one (a test
checks that). Add a setting here, not with ad-hoc `os.environ` reads elsewhere.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moderation.errors import ConfigError

DEFAULT_SECRET_KEY = "dev-insecure-change-me"  # noqa: S105 - refused in production, see app factory


@dataclass(frozen=True, slots=True)
class Setting:
    name: str
    default: Any
    help: str
    type: type = str
    formerly: str = ""  # an older name still read when this one is not set


SETTINGS: tuple[Setting, ...] = (
    Setting("ENV", "development", "`production` refuses to start with the default secret key."),
    Setting("SECRET_KEY", DEFAULT_SECRET_KEY, "Signs admin sessions and CSRF tokens. Set a long random value."),
    Setting(
        "SESSION_HOURS",
        12,
        "How long a review-UI login lasts, from signing in; signing out ends it at once, on every copy of the cookie.",
        int,
    ),
    Setting(
        "DATABASE_URL",
        "",
        "SQLAlchemy URL. Empty: SQLite (WAL) at `<INSTANCE_PATH>/moderation.sqlite3`. "
        "Use `postgresql+psycopg://user@host/db` when several workers or hosts share the data.",
    ),
    Setting("INSTANCE_PATH", "instance", "Folder for the embedded SQLite database and other local state."),
    Setting("MODEL_DIR", "models", "Folder of trained model artifacts and their manifests."),
    Setting("DATA_DIR", "", "Folder of corpora to train on besides the shipped ones; empty: the shipped corpora only."),
    Setting("MAX_CONTENT_LENGTH", 65536, "Largest request body accepted, in bytes (larger → 413).", int),
    Setting("ANONYMIZE_IP", False, "Store IPv4 addresses with the last octet zeroed (IPv6: last 80 bits).", bool),
    Setting("RETENTION_DAYS", 90, "Default age after which `moderation purge` removes personal data.", int),
    Setting(
        "RATELIMIT_STORAGE_URL",
        "memory://",
        "Where rate-limit counters live: `memory://` (each worker its own) or `redis://127.0.0.1:6379` (shared).",
    ),
    Setting(
        "RATELIMIT_SITE",
        "1200/minute",
        "Requests that write (checks, feedback, Akismet comment-check and submit-spam/ham) one site may make, "
        "counted per site after authentication; a site's own `rate_limit` setting overrides it; empty: no limit.",
        formerly="RATELIMIT_CHECK",
    ),
    Setting(
        "RATELIMIT_FAILED_AUTH",
        "30/minute",
        "Failed authentications (API and Akismet) one client address may make; past it the address gets 429 "
        "for every request until the window has room again; empty: no limit.",
    ),
    Setting(
        "METRICS_TOKEN",
        "",
        "When set, /metrics answers only `Authorization: Bearer <this token>`; empty: /metrics is public.",
    ),
    Setting(
        "CALLBACK_ALLOW_PRIVATE",
        False,
        "Let site callbacks reach loopback, private and link-local addresses (local development only).",
        bool,
    ),
    Setting("MODEL_RELOAD_SECONDS", 10, "How often a worker looks for a newly promoted model.", int),
    Setting("WORKERS", 2, "Gunicorn worker processes started by `moderation serve`.", int),
    Setting(
        "THREADS",
        64,
        "Threads per worker of gunicorn's gthread worker: how many slow or waiting requests one worker serves "
        "at once (a client trickling its request holds a thread). 1: gunicorn's sync worker, behind a buffering "
        "proxy only.",
        int,
    ),
    Setting(
        "CONTROL_SOCKET",
        "",
        "Unix socket for gunicorn's control tool (`gunicornc -s PATH`); empty: none. Give each server on a "
        "machine its own path: gunicorn's default, ~/.gunicorn/gunicorn.ctl, is one file for all of them.",
    ),
    Setting("TRAIN_ON_START", True, "Train a model on first `moderation serve` when MODEL_DIR has none.", bool),
    Setting("RETRAIN_KEEP_MODELS", 5, "Model artifacts `moderation retrain` keeps (the champion always stays).", int),
    Setting(
        "RETRAIN_METRICS",
        "recall_at_1pct_fpr,mcc_at_spam",
        "Metrics on which a retrained challenger must not be worse than the champion to be promoted.",
    ),
    Setting(
        "RETRAIN_HOLDOUT",
        1000,
        "Recent labelled comments held out to compare challenger and champion (shared among sites, both classes).",
        int,
    ),
    Setting(
        "RETRAIN_SOURCE_WEIGHTS",
        "moderator=1,feedback=0.5,akismet=0.5",
        "Training weight of a stored label by its source (site feedback and Akismet reports count less).",
    ),
    Setting(
        "RETRAIN_SITE_DAILY_CAP", 25, "Most training weight one site's labels of one day add to the global model.", int
    ),
    Setting("SITE_MIN_LABELS", 10, "Labels a site needs before it gets its own correction to the global model.", int),
    Setting("SITE_MAX_LABELS", 5000, "Most recent labels used to fit a site's own correction.", int),
    Setting(
        "SITE_REFIT_SECONDS",
        60,
        "A running server refits a site's own model once its oldest new label is this old (0: never; then cron "
        "`moderation retrain --sites-only`).",
        int,
    ),
    Setting("SITE_REFIT_LABELS", 20, "... or as soon as the site has this many new labels.", int),
    Setting("RETRAIN_LOCK_TIMEOUT", 3600, "Seconds a retrain waits for another one to finish before giving up.", int),
)

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _coerce(setting: Setting, raw: str) -> Any:
    """Turn an environment string into the setting's type, or fail naming the variable."""
    if setting.type is bool:
        lowered = raw.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ConfigError(f"MODERATION_{setting.name}: expected true/false, found {raw!r}")
    if setting.type is int:
        try:
            return int(raw)
        except ValueError as exc:
            raise ConfigError(f"MODERATION_{setting.name}: expected an integer, found {raw!r}") from exc
    return raw


def load(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Read every setting from `environ` (default: the process environment) into a plain dict."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        raw = env.get(f"MODERATION_{setting.name}")
        if raw is None and setting.formerly:
            raw = env.get(f"MODERATION_{setting.formerly}")
        values[setting.name] = setting.default if raw is None else _coerce(setting, raw)
    return values


def database_url(values: Mapping[str, Any]) -> str:
    """The configured database URL, defaulting to SQLite in the instance folder."""
    if values["DATABASE_URL"]:
        return str(values["DATABASE_URL"])
    path = Path(values["INSTANCE_PATH"]).resolve() / "moderation.sqlite3"
    return f"sqlite:///{path}"
