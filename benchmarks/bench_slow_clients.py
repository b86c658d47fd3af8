"""Slow clients against the real server: does it keep answering health checks and comment checks?

    .venv/bin/python benchmarks/bench_slow_clients.py                    # 50 slow connections, default server
    .venv/bin/python benchmarks/bench_slow_clients.py --threads 1       # the sync worker, for comparison

Starts `moderation serve --workers 2` (MODERATION_THREADS from --threads, default the setting's default)
on a fresh SQLite database with a model trained on the starter corpus (or --model-dir), then, for
--seconds each:

1. baseline: GET /healthz once every 0.2 s (each with a 2 s timeout) beside a closed loop of comment checks
   from 4 keep-alive clients; no slow clients;
2. the same with --slow connections open, each trickling a request's header lines, one line every
   --interval seconds (a slowloris: every connection holds whatever serves it until the request completes,
   which it never does within the run; connections the server closes are reopened).

Reported per phase: healthz answered/failed, its p50/p99/max latency, checks/s and their p99, and how many
slow connections were open at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.live_server import new_site_key, serve, service_env


class SlowClients:
    """`count` connections to `base`, each sending one more header line every `interval` seconds, never finishing.

    Used as a context manager; `open_count()` says how many are still connected. A connection the
    server closes (it may refuse a request with too many header lines) is replaced by a new one.
    """

    def __init__(self, base: str, count: int, interval: float = 1.0, path: str = "/api/v1/comments/check") -> None:
        parts = urlsplit(base)
        self.address = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.count = count
        self.interval = interval
        self.path = path
        self.sockets: list[socket.socket | None] = []
        self.reopened = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._trickle, name="slow-clients", daemon=True)

    def _connect(self) -> socket.socket | None:
        try:
            sock = socket.create_connection(self.address, timeout=5)
            sock.sendall(f"POST {self.path} HTTP/1.1\r\nHost: {self.address[0]}\r\n".encode())
            return sock
        except OSError:
            return None

    def __enter__(self) -> SlowClients:
        self.sockets = [self._connect() for _ in range(self.count)]
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        for sock in self.sockets:
            if sock is not None:
                sock.close()

    def _trickle(self) -> None:
        line = 0
        while not self._stop.wait(self.interval):
            line += 1
            for n, sock in enumerate(self.sockets):
                try:
                    if sock is None:
                        raise OSError("not connected")
                    sock.sendall(f"X-Slow-{line}: {'a' * 20}\r\n".encode())
                except OSError:
                    if sock is not None:
                        sock.close()
                    self.sockets[n] = self._connect()
                    self.reopened += 1

    def open_count(self) -> int:
        """How many of the connections the server still holds open (a closed one reads as end of stream)."""
        alive = 0
        for sock in self.sockets:
            if sock is None:
                continue
            try:
                sock.setblocking(False)
                data = sock.recv(1, socket.MSG_PEEK)
                alive += data != b""  # b"": closed; bytes: the server answered (e.g. 400), so not held
            except BlockingIOError:
                alive += 1  # nothing to read yet: still waiting on us
            except OSError:
                pass
            finally:
                sock.setblocking(True)
        return alive


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def probe(base: str, key: str, seconds: float, checkers: int = 4) -> dict[str, float]:
    """/healthz every 0.2 s (2 s timeout) beside `checkers` closed-loop check clients, for `seconds`."""
    stop = time.monotonic() + seconds
    health: list[float] = []
    health_failures = 0
    check_latencies: list[float] = []
    check_failures = 0
    lock = threading.Lock()
    body = {"content": "Thanks, the second chart made it clear.", "author_name": "Dana"}

    def check_loop() -> None:
        nonlocal check_failures
        with httpx.Client(base_url=base, timeout=10, headers={"Authorization": f"Bearer {key}"}) as client:
            while time.monotonic() < stop:
                started = time.perf_counter()
                try:
                    ok = client.post("/api/v1/comments/check", json=body).status_code == 200
                except httpx.HTTPError:
                    ok = False
                with lock:
                    if ok:
                        check_latencies.append(time.perf_counter() - started)
                    else:
                        check_failures += 1

    threads = [threading.Thread(target=check_loop) for _ in range(checkers)]
    for thread in threads:
        thread.start()
    while time.monotonic() < stop:
        started = time.perf_counter()
        try:
            answered = httpx.get(f"{base}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            answered = False
        if answered:
            health.append(time.perf_counter() - started)
        else:
            health_failures += 1
        time.sleep(max(0.0, 0.2 - (time.perf_counter() - started)))
    for thread in threads:
        thread.join()
    return {
        "healthz_answered": float(len(health)),
        "healthz_failed": float(health_failures),
        "healthz_p50_ms": _percentile(health, 0.5) * 1000,
        "healthz_p99_ms": _percentile(health, 0.99) * 1000,
        "healthz_max_ms": max(health, default=float("nan")) * 1000,
        "checks_per_s": len(check_latencies) / seconds,
        "check_p99_ms": _percentile(check_latencies, 0.99) * 1000,
        "check_failed": float(check_failures),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slow", type=int, default=50, help="slow connections to hold open")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between a slow client's header lines")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each phase")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, help="MODERATION_THREADS (default: the setting's default)")
    parser.add_argument("--model-dir", type=Path, help="use this model folder instead of training one")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench_slow_"))
    database_url = f"sqlite:///{tmp / 'moderation.sqlite3'}"
    key = new_site_key(database_url)
    overrides = {"TRAIN_ON_START": "true"} | ({"THREADS": str(args.threads)} if args.threads else {})
    env = service_env(tmp, database_url, args.model_dir or tmp / "models", **overrides)
    try:
        with serve(env, tmp / "server.log", workers=args.workers, ready_timeout=300, ready_path="/readyz") as server:
            threads_line = next(line for line in server.log().splitlines() if "thread(s) each" in line)
            baseline = probe(server.base, key, args.seconds)
            with SlowClients(server.base, args.slow, args.interval) as slow:
                time.sleep(2 * args.interval)  # every slow connection has been accepted and has sent lines
                loaded = probe(server.base, key, args.seconds)
                loaded["slow_open_at_end"] = float(slow.open_count())
                loaded["slow_reopened"] = float(slow.reopened)
        report = {
            "server": threads_line.strip(),
            "slow_connections": args.slow,
            "interval_s": args.interval,
            "seconds_per_phase": args.seconds,
            "baseline": {k: round(v, 2) for k, v in baseline.items()},
            "with_slow_clients": {k: round(v, 2) for k, v in loaded.items()},
            "cpus": os.cpu_count(),
            "load_average_after": os.getloadavg(),
        }
        print(json.dumps(report, indent=2))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
