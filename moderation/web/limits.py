"""Rate limits, counted with the `limits` library: a budget per site, and one per address for failed logins.

    site budget   every request that writes (JSON check and feedback, Akismet comment-check, submit-spam,
                  submit-ham) spends one unit of its site's MODERATION_RATELIMIT_SITE (a site's own
                  `rate_limit` setting overrides it); past it, 429 with Retry-After
    failed auth   each request whose credentials fail spends one unit of its client address's
                  MODERATION_RATELIMIT_FAILED_AUTH; past it, every request from that address is refused
                  with 429 before its credentials are even looked at (so the answer tells a guesser nothing)

The site budget is counted after authentication, under the site the credentials belong to: every
spelling of one credential (`bearer K`, `BEARER  K`, X-Moderation-Site `6` or `006`, the Akismet key in
the body, the path or the Host) is one site and one budget. Counters live in MODERATION_RATELIMIT_STORAGE_URL:
`memory://` keeps them per worker process, `redis://` shares them between workers and hosts. When the
store fails, requests are let through (a site must not lose comments because Redis restarted) and the
store is left alone for a few seconds before it is tried again.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from limits import RateLimitItem, parse
from limits.errors import StorageError
from limits.storage import storage_from_string
from limits.strategies import SlidingWindowCounterRateLimiter

from moderation.errors import ConfigError
from moderation.store.schema import Site

log = logging.getLogger(__name__)

# After the store fails, requests go unlimited for this long before it is tried again: a dead Redis must
# not cost every request a connection attempt.
STORE_RETRY_SECONDS = 5.0
# A Redis that does not answer within this long counts as failed (the request then goes unlimited).
REDIS_TIMEOUT_SECONDS = 0.5


def parse_limit(text: str, name: str = "rate limit") -> RateLimitItem | None:
    """`text` like "1200/minute" or "20 per second" as a limit; "" → None (no limit). Bad text → ConfigError."""
    if not text.strip():
        return None
    try:
        return _parse(text.strip())
    except ValueError as exc:
        raise ConfigError(f"{name}: expected a rate like 1200/minute or 20 per second, found {text!r}") from exc


@lru_cache(maxsize=256)
def _parse(text: str) -> RateLimitItem:
    return parse(text)


def site_budget(site: Site) -> str:
    """The name a site's budget is counted under: its id, and a piece of its key's hash, so that two
    installations sharing one Redis never share a budget."""
    return f"{site.id}:{site.key_hash[:8]}"


@dataclass(frozen=True, slots=True)
class Refusal:
    """A request over a limit: which limit, and how many seconds until it has room again."""

    limit: str
    retry_after: int


class RateLimits:
    """The app's limits and their counters: `spend` for a site's writes, `refused`/`failed` for an address.

    `__init__` takes a ready storage and limits (tests and benchmarks pass their own); `from_settings`
    builds them from the MODERATION_* settings and fails fast on a malformed one.
    """

    def __init__(self, storage: Any, site_limit: RateLimitItem | None, failed_auth_limit: RateLimitItem | None) -> None:
        self.storage = storage
        self.site_limit = site_limit
        self.failed_auth_limit = failed_auth_limit
        self._limiter = SlidingWindowCounterRateLimiter(storage)
        self._resting_until = 0.0
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, values: dict[str, Any]) -> RateLimits:
        """The limits MODERATION_RATELIMIT_SITE, _FAILED_AUTH and _STORAGE_URL describe; ConfigError when malformed."""
        site_limit = parse_limit(str(values["RATELIMIT_SITE"]), "MODERATION_RATELIMIT_SITE")
        failed_limit = parse_limit(str(values["RATELIMIT_FAILED_AUTH"]), "MODERATION_RATELIMIT_FAILED_AUTH")
        url = str(values["RATELIMIT_STORAGE_URL"]) or "memory://"
        options: dict[str, float | str | bool] = {}
        if url.startswith(("redis://", "rediss://", "redis+unix://")):
            options = {"socket_timeout": REDIS_TIMEOUT_SECONDS, "socket_connect_timeout": REDIS_TIMEOUT_SECONDS}
        try:
            storage = storage_from_string(url, wrap_exceptions=True, **options)
        except Exception as exc:  # limits raises ConfigurationError, or the driver's own error
            raise ConfigError(f"MODERATION_RATELIMIT_STORAGE_URL: cannot use {url!r}: {exc}") from exc
        return cls(storage, site_limit, failed_limit)

    def spend(self, site_budget: str, override: object = None) -> Refusal | None:
        """Count one write of the site whose budget is named `site_budget`; a Refusal when it is over its limit.

        `override` is the site's own `rate_limit` setting; a malformed one is logged and the default used.
        """
        limit = self.site_limit
        if isinstance(override, str) and override.strip():
            try:
                limit = parse_limit(override)
            except ConfigError as exc:
                log.error("site budget %s: ignoring its rate_limit setting: %s", site_budget, exc)
        if limit is None:
            return None
        return self._hit(limit, "site", site_budget)

    def refused(self, address: str) -> Refusal | None:
        """A Refusal when `address` used up its failed-authentication budget (counting nothing)."""
        limit = self.failed_auth_limit
        if limit is None or not self._store_usable():
            return None
        try:
            if self._limiter.test(limit, "failed-auth", address):
                return None
            return self._refusal(limit, "failed-auth", address)
        except StorageError as exc:
            self._rest(exc)
            return None

    def failed(self, address: str) -> None:
        """Count one failed authentication from `address`."""
        if self.failed_auth_limit is not None:
            self._hit(self.failed_auth_limit, "failed-auth", address)

    def _hit(self, limit: RateLimitItem, *identifiers: str) -> Refusal | None:
        if not self._store_usable():
            return None
        try:
            if self._limiter.hit(limit, *identifiers):
                return None
            return self._refusal(limit, *identifiers)
        except StorageError as exc:
            self._rest(exc)
            return None

    def _refusal(self, limit: RateLimitItem, *identifiers: str) -> Refusal:
        reset_at = self._limiter.get_window_stats(limit, *identifiers).reset_time
        return Refusal(str(limit), max(1, math.ceil(reset_at - time.time())))

    def _store_usable(self) -> bool:
        return time.monotonic() >= self._resting_until

    def _rest(self, exc: Exception) -> None:
        with self._lock:
            if time.monotonic() >= self._resting_until:
                log.warning("rate-limit store failed, serving without limits for %.0f s: %s", STORE_RETRY_SECONDS, exc)
            self._resting_until = time.monotonic() + STORE_RETRY_SECONDS
