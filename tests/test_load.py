"""Sustained load on a real gunicorn over loopback: zero errors and flat worker memory.

Eight client threads mix JSON checks, status reads, feedback and Akismet comment-checks, every comment
with fresh random words (so unbounded caches or leaks per distinct input would show), for
MODERATION_LOAD_SECONDS (default 40) after a warm-up. Worker RSS is sampled every half second; the
mean of the last third must not exceed the mean of the first third by more than 10 % + 8 MiB. Run with
the default threaded (gthread) workers on SQLite and PostgreSQL, and with sync workers on SQLite. A
failure quotes what the server logged as an error, so a CI failure says what broke.
"""

from __future__ import annotations

import os
import random
import statistics
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from benchmarks.live_server import rss_kib, serve, service_env, wait_for
from moderation.store import db
from moderation.store.sites import create_site
from moderation.web.serving import DEFAULT_THREADS

WORDS = [
    "thanks", "post", "great", "article", "chart", "code", "build", "error", "python", "fix", "loan", "casino",
    "cheap", "bonus", "visit", "site", "channel", "subscribe", "crypto", "invest", "recipe", "photo", "coast",
    "summer", "agree", "disagree", "benchmark", "warm-up", "time", "docs", "flags",
]  # fmt: skip
LOAD_SECONDS = float(os.environ.get("MODERATION_LOAD_SECONDS", "40"))
WARMUP_SECONDS = 8.0
CLIENTS = 8


def _errors(log: str, limit: int = 60) -> str:
    """The lines of a server log that report errors, with the traceback lines after them (at most `limit`)."""
    lines = log.splitlines()
    picked: list[str] = []
    for n, line in enumerate(lines):
        if "ERROR" in line or "Traceback" in line or "CRITICAL" in line:
            picked.extend(lines[n : n + 25])
        if len(picked) >= limit:
            break
    return "\n".join(picked[:limit]) or "(none logged)"


def _text(rng: random.Random) -> str:
    words = rng.choices(WORDS, k=rng.randint(5, 40))
    words += ["".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.randint(4, 10))) for _ in range(3)]
    if rng.random() < 0.3:
        words.append(f"http://{rng.choice(['bit.ly', 'casino-win.top', 'example.org'])}/{rng.randint(0, 10**6)}")
    return " ".join(words)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("db_url", "threads", "expected_threads"),
    [
        pytest.param("sqlite", "1", 1, id="sqlite-sync"),
        pytest.param("sqlite", None, DEFAULT_THREADS, id="sqlite-default-threads"),
        pytest.param("postgres", None, DEFAULT_THREADS, id="postgres-default-threads", marks=pytest.mark.postgres),
    ],
    indirect=["db_url"],
)
def test_sustained_load_has_zero_errors_and_flat_memory(db_url, threads, expected_threads, tmp_path, model_dir):
    """Mixed API and Akismet traffic for LOAD_SECONDS: every answer 2xx, worker RSS flat first vs last third."""
    engine = db.make_engine(db_url)
    db.upgrade(engine)
    with db.make_sessionmaker(engine)() as session:
        _, key = create_site(session, "Blog", "https://blog.example")
    engine.dispose()
    statuses: Counter[str] = Counter()
    latencies: list[float] = []
    samples: list[tuple[float, int]] = []
    lock = threading.Lock()
    stop = threading.Event()
    measuring = threading.Event()

    env = service_env(tmp_path, db_url, model_dir, **({"THREADS": threads} if threads else {}))
    with serve(env, tmp_path / "server.log", workers=2) as server:
        assert f"2 workers, {expected_threads} thread(s) each" in server.log()
        # serve() returns once one worker answers; the other may still be booting (it was missing from the list)
        assert wait_for(lambda: len(server.workers()) == 2, timeout=60), server.log()
        workers = server.workers()

        def client_loop(seed: int) -> None:
            rng = random.Random(seed)
            headers = {"Authorization": f"Bearer {key}"}
            with httpx.Client(base_url=server.base, timeout=30) as client:
                last_id = None
                while not stop.is_set():
                    roll = rng.random()
                    started = time.perf_counter()
                    if roll < 0.6 or last_id is None:
                        response = client.post("/api/v1/comments/check", json={"content": _text(rng)}, headers=headers)
                        if response.status_code == 200:
                            last_id = response.json()["id"]
                        kind = "check"
                    elif roll < 0.75:
                        response = client.get(f"/api/v1/comments/{last_id}", headers=headers)
                        kind = "status"
                    elif roll < 0.8:
                        label = rng.choice(["spam", "ham"])
                        response = client.post(
                            f"/api/v1/comments/{last_id}/feedback", json={"label": label}, headers=headers
                        )
                        kind = "feedback"
                    else:
                        form = {
                            "api_key": key,
                            "blog": "https://blog.example",
                            "user_ip": f"203.0.113.{rng.randrange(1, 255)}",
                            "comment_content": _text(rng),
                        }
                        response = client.post("/1.1/comment-check", data=form)
                        kind = "akismet"
                    elapsed = time.perf_counter() - started
                    with lock:
                        statuses[f"{kind} {response.status_code}"] += 1
                        if measuring.is_set():
                            latencies.append(elapsed)

        with ThreadPoolExecutor(CLIENTS) as pool:
            futures = [pool.submit(client_loop, seed) for seed in range(CLIENTS)]
            time.sleep(WARMUP_SECONDS)
            measuring.set()
            started = time.monotonic()
            while time.monotonic() - started < LOAD_SECONDS:
                samples.append((time.monotonic() - started, sum(rss_kib(pid) for pid in workers)))
                time.sleep(0.5)
            stop.set()
            for future in futures:
                future.result()
        assert server.workers() == workers, f"a worker died or was replaced during the run:\n{_errors(server.log())}"
        server_errors = _errors(server.log())

    errors = {k: v for k, v in statuses.items() if not k.endswith(" 200")}
    third = len(samples) // 3
    first = statistics.mean(rss for _, rss in samples[:third])
    last = statistics.mean(rss for _, rss in samples[-third:])
    latencies.sort()
    print(
        f"\nrequests={sum(statuses.values())} in {LOAD_SECONDS:.0f}s+{WARMUP_SECONDS:.0f}s warm-up "
        f"({len(latencies) / LOAD_SECONDS:.0f}/s measured), p50={latencies[len(latencies) // 2] * 1000:.1f} ms "
        f"p99={latencies[int(len(latencies) * 0.99)] * 1000:.1f} ms, mix={dict(statuses)}, "
        f"worker RSS first third {first / 1024:.1f} MiB, last third {last / 1024:.1f} MiB"
    )
    assert errors == {}, f"non-200 answers under load: {errors}\nserver errors:\n{server_errors}"
    assert len(latencies) > LOAD_SECONDS  # the run did real work (at least one request a second)
    assert last <= first * 1.10 + 8 * 1024, f"worker RSS grew from {first / 1024:.1f} to {last / 1024:.1f} MiB"
