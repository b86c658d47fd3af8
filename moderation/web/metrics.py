"""Prometheus metrics for /metrics.

Under `moderation serve` the metrics are multiprocess-safe: the server points PROMETHEUS_MULTIPROC_DIR
at `<INSTANCE_PATH>/prometheus` before the workers start, each worker writes its values there, and
/metrics (answered by any worker) adds them up. Under another server without that variable each
worker reports only its own counts.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from functools import lru_cache

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    values,
)

# Check latency buckets around the 10 ms target, in seconds.
_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass(frozen=True)
class Instruments:
    requests: Counter
    latency: Histogram
    decisions: Counter


# A gthread worker's first requests arrive on several threads at once: each would create the metrics, and
# every one but the first got prometheus_client's "Duplicated timeseries" (a 500) without this lock.
_creating = threading.Lock()


def instruments() -> Instruments:
    """The process's metric objects, created on first use (never at import), once however many threads ask."""
    with _creating:
        return _create_instruments()


@lru_cache(maxsize=1)
def _create_instruments() -> Instruments:
    # prometheus_client picks file-backed or in-memory values when it is imported, which happens before
    # `moderation serve` sets PROMETHEUS_MULTIPROC_DIR; pick again now that the variable is known.
    values.ValueClass = values.get_value_class()
    return Instruments(
        requests=Counter("moderation_http_requests", "HTTP requests answered", ["endpoint", "method", "status"]),
        latency=Histogram(
            "moderation_http_request_seconds", "Time to answer a request", ["endpoint"], buckets=_BUCKETS
        ),
        decisions=Counter("moderation_decisions", "Comments checked, by decision and source", ["decision", "source"]),
    )


def observe(endpoint: str, method: str, status: int, seconds: float) -> None:
    """Count one answered request and its latency."""
    count, latency = _request_series(endpoint, method, status)
    count.inc()
    latency.observe(seconds)


def count_decision(decision: str, source: str) -> None:
    """Count one checked comment."""
    _decision_series(decision, source).inc()


# `labels()` takes a lock and builds its key on every call; a request only needs the series it already has.
# The caches are bounded because the method and endpoint labels come from the request.
@lru_cache(maxsize=512)
def _request_series(endpoint: str, method: str, status: int) -> tuple[Counter, Histogram]:
    metric = instruments()
    return metric.requests.labels(endpoint, method, str(status)), metric.latency.labels(endpoint)


@lru_cache(maxsize=64)
def _decision_series(decision: str, source: str) -> Counter:
    return instruments().decisions.labels(decision, source)


def render() -> tuple[bytes, str]:
    """The exposition text (all workers' values in multiprocess mode) and its content type."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    instruments()
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
