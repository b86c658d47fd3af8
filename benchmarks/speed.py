"""Speed: in-process latency and throughput, model load time and memory, HTTP under load, and a profile.

machine_info(root)                     CPU, cores, RAM, load, Python, libraries, git commit, peer versions
latency(model, comments)               one `SpamModel.score` at a time: p50/p95/p99 (ms)
batch_throughput(model, comments)      `score_many` (with clues) and `predict_proba` (score only), comments/s
load_in_fresh_process(model_dir)       a new interpreter: import time, load_model time, resident memory
bogofilter_costs(train, comments)      bogofilter's per-comment cost, bulk and one process per message
http_load(model_dir, levels)           gunicorn + wrk: /healthz and the check endpoint at each concurrency
profile_scoring(model, comments)       cProfile of single-comment scoring, time grouped by where it goes
profile_check_request(model_dir)       cProfile of the whole check request in-process (Flask test client)
"""

from __future__ import annotations

import cProfile
import json
import os
import platform
import pstats
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from moderation.comment import Comment, LabelledComment

ROOT = Path(__file__).resolve().parent.parent


# --- the machine ---------------------------------------------------------------------------------------------


def _first_line(cmd: Sequence[str]) -> str:
    try:
        out = subprocess.run(list(cmd), capture_output=True, text=True, check=False, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if text else "unknown"


def machine_info(root: Path = ROOT) -> dict[str, Any]:
    """What produced the figures: hardware, load, software versions and the git commit."""
    from importlib.metadata import PackageNotFoundError, version

    cpu = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        found = re.search(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(), re.M)
        cpu = found.group(1).strip() if found else cpu
    memory = "unknown"
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        found = re.search(r"^MemTotal:\s*(\d+) kB", meminfo.read_text(), re.M)
        memory = f"{int(found.group(1)) / 1024 / 1024:.1f} GiB" if found else memory
    libraries = {}
    for name in ("scikit-learn", "numpy", "scipy", "nltk", "joblib", "flask", "gunicorn", "sqlalchemy"):
        try:
            libraries[name] = version(name)
        except PackageNotFoundError:
            libraries[name] = "not installed"
    commit = _first_line(["git", "-C", str(root), "rev-parse", "--short", "HEAD"])
    dirty = _first_line(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"])
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory": memory,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "os": platform.platform(),
        "python": platform.python_version(),
        "libraries": libraries,
        "git_commit": commit + (" (uncommitted changes)" if dirty not in ("", "unknown", "not installed") else ""),
        "bogofilter": _first_line(["bogofilter", "-V"]),
        "spamassassin": _first_line(["spamassassin", "-V"]),
        "wrk": _first_line(["wrk", "-v"]),
    }


# --- in-process ----------------------------------------------------------------------------------------------


def percentiles(samples_s: Sequence[float] | np.ndarray) -> dict[str, float]:
    """p50/p95/p99/mean/max of durations given in seconds, in milliseconds."""
    ms = np.asarray(samples_s, dtype=float) * 1000.0
    return {
        "n": len(ms),
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
        "p99_ms": float(np.percentile(ms, 99)),
        "mean_ms": float(ms.mean()),
        "max_ms": float(ms.max()),
    }


def latency(model: Any, comments: Sequence[Comment], *, warmup: int = 20) -> tuple[dict[str, float], np.ndarray]:
    """Score each comment alone with `model.score` (as the API does); return the summary and every sample (s)."""
    for comment in comments[:warmup]:
        model.score(comment)
    samples = np.empty(len(comments))
    for i, comment in enumerate(comments):
        started = time.perf_counter()
        model.score(comment)
        samples[i] = time.perf_counter() - started
    return percentiles(samples), samples


def batch_throughput(model: Any, comments: Sequence[Comment], batch: int = 500) -> dict[str, float]:
    """Comments per second through `score_many` (probability + clues) and `predict_proba` (probability only)."""
    out = {}
    for name, call in (("score_many", model.score_many), ("predict_proba", model.predict_proba)):
        started = time.perf_counter()
        for start in range(0, len(comments), batch):
            call(list(comments[start : start + batch]))
        out[f"{name}_per_s"] = len(comments) / (time.perf_counter() - started)
    out["batch"] = batch
    out["n"] = len(comments)
    return out


LOAD_SCRIPT = r"""
import json, sys, time
from pathlib import Path
def rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith(("VmRSS", "VmHWM")):
            yield line.split(":")[0], int(line.split()[1]) / 1024
started = time.perf_counter()
from moderation.comment import Comment
from moderation.core.model_store import load_model
imported = time.perf_counter()
base = dict(rss_mb())["VmRSS"]
model = load_model(Path(sys.argv[1]))
loaded = time.perf_counter()
after_load = dict(rss_mb())["VmRSS"]
model.score(Comment(content="first comment scored after loading"))
first = time.perf_counter()
for i in range(200):
    model.score(Comment(content=f"warm-up comment number {i} http://example.com/{i}", author_name=f"reader {i}"))
mem = dict(rss_mb())
print(json.dumps({"import_s": imported - started, "load_s": loaded - imported, "first_score_s": first - loaded,
                  "rss_before_load_mb": base, "rss_after_load_mb": after_load, "rss_after_scoring_mb": mem["VmRSS"],
                  "peak_rss_mb": mem["VmHWM"]}))
"""


def load_in_fresh_process(model_dir: Path) -> dict[str, float]:
    """Load the current model in a new interpreter: import, load (hash check + unpickle) and first-score times, RSS."""
    result = subprocess.run(
        [sys.executable, "-c", LOAD_SCRIPT, str(model_dir)], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


# --- bogofilter in the same run -------------------------------------------------------------------------------


def bogofilter_costs(
    train: Sequence[LabelledComment], comments: Sequence[Comment], *, single: int = 100
) -> dict[str, float]:
    """bogofilter's training time, bulk cost per comment (one process, mbox) and one-process-per-message latency."""
    from .peers import Bogofilter, write_mbox

    peer = Bogofilter()
    try:
        started = time.perf_counter()
        peer.fit(train)
        fit_s = time.perf_counter() - started
        assert peer.work_dir is not None
        # Only bogofilter's own work is timed: the messages are written before the clock starts.
        box = write_mbox(peer.work_dir / "bulk.mbox", comments)
        started = time.perf_counter()
        peer.score_mbox(box)
        bulk_s = time.perf_counter() - started
        samples = []
        for comment in comments[:single]:
            started = time.perf_counter()
            peer.score_one_process(comment)
            samples.append(time.perf_counter() - started)
    finally:
        peer.close()
    one = percentiles(samples)
    return {
        "train_n": len(train),
        "fit_s": fit_s,
        "bulk_n": len(comments),
        "bulk_per_comment_ms": bulk_s / len(comments) * 1000,
        "bulk_per_s": len(comments) / bulk_s,
        "process_p50_ms": one["p50_ms"],
        "process_p99_ms": one["p99_ms"],
    }


# --- HTTP under load -------------------------------------------------------------------------------------------

# Every request is a different comment (counter in the text, author and IP) so that the duplicate and
# flood rules stay quiet and every check runs the whole path: rules, model, policy, database write.
WRK_CHECK_LUA = """
local texts = {
  "Thanks, this fixed my build. The trick with the PATH variable was what I missed.",
  "Check out my channel http://bit.ly/abc123 subscribe please!!!",
  "I disagree with the second point, the benchmark ignores warm-up time.",
  "Cheap viagra cialis online, no prescription http://pills-shop.xyz",
  "Lovely photos of the coast, we walked the same path last summer.",
  "Earn 5000 dollars a week from home, contact my account manager on WhatsApp +1 555 0100",
  "See the docs at https://docs.python.org/3/library/re.html for the flags.",
  "Danke fuer die Erklaerung, jetzt verstehe ich den Unterschied."
}
local counter = 0
local thread_id = 0
setup = function(thread)
  thread:set("thread_id", thread_id)
  thread_id = thread_id + 1
end
request = function()
  counter = counter + 1
  local n = thread_id * 1000000 + counter
  local body = string.format(
    '{"content": "%%s (%%d)", "author_name": "reader %%d", "author_email": "reader%%d@example.org", ' ..
    '"user_ip": "10.%%d.%%d.%%d", "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0", ' ..
    '"permalink": "https://blog.example/post/%%d"}',
    texts[counter %% #texts + 1], n, n, n, thread_id, math.floor(counter / 250) %% 250, counter %% 250 + 1,
    counter %% 50)
  return wrk.format("POST", nil, {["Content-Type"] = "application/json",
                                  ["Authorization"] = "Bearer %(key)s"}, body)
end
"""


def parse_wrk(output: str) -> dict[str, float]:
    """Requests/s, latency percentiles (ms) and error counts from `wrk --latency` output."""

    def ms(value: str) -> float:
        found = re.match(r"([\d.]+)(us|ms|s|m)$", value)
        if not found:
            return float("nan")
        return float(found.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[found.group(2)]

    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    result: dict[str, float] = {"rps": float(rps.group(1)) if rps else 0.0}
    for pct in ("50", "75", "90", "99"):
        found = re.search(rf"^\s+{pct}(?:\.000)?%\s+(\S+)", output, re.M)
        result[f"p{pct}_ms"] = ms(found.group(1)) if found else float("nan")
    requests = re.search(r"(\d+) requests in", output)
    result["requests"] = float(requests.group(1)) if requests else 0.0
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    result["non_2xx"] = float(bad.group(1)) if bad else 0.0
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    result["socket_errors"] = float(sum(int(x) for x in errors.groups())) if errors else 0.0
    return result


def _memory_mb(pid: int) -> dict[str, float]:
    """Resident and proportional set size of a process (PSS splits shared pages between sharers)."""
    out = {}
    rollup = Path(f"/proc/{pid}/smaps_rollup")
    if rollup.exists():
        for line in rollup.read_text().splitlines():
            if line.startswith(("Rss:", "Pss:")):
                out[line.split(":")[0].lower() + "_mb"] = int(line.split()[1]) / 1024
    return out


def _run_wrk(url: str, seconds: float, connections: int, script: Path | None) -> dict[str, float]:
    threads = max(1, min(connections, 2))
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    if script is not None:
        cmd += ["-s", str(script)]
    output = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    return parse_wrk(output)


# The operating point: 400 checks/s offered by 8 concurrent clients.
OPEN_LOOP_RATE = 400.0
OPEN_LOOP_CLIENTS = 8


def _open_loop(check_url: str, key: str, seconds: float) -> dict[str, Any]:
    """Checks sent at OPEN_LOOP_RATE from OPEN_LOOP_CLIENTS threads, latency from each one's scheduled time.

    A closed loop at concurrency c measures latency at whatever rate the server sustains (c / throughput
    on average); this measures it at the target rate, and a stall counts against us (no coordinated omission).
    """
    from .bench_http import bodies, run_open_loop

    count = int(OPEN_LOOP_RATE * seconds) + OPEN_LOOP_CLIENTS
    payloads = bodies(count, first=10_000_000)  # numbered apart from the wrk script's comments: no duplicates
    result = run_open_loop(check_url, int(seconds), OPEN_LOOP_RATE, OPEN_LOOP_CLIENTS, key, payloads)
    return {**result, "rate": OPEN_LOOP_RATE, "clients": OPEN_LOOP_CLIENTS}


def http_load(
    model_dir: Path,
    levels: Sequence[int],
    *,
    seconds: float = 5,
    workers: int = 2,
    postgres_url: str | None = None,
) -> dict[str, Any]:
    """Serve with `moderation serve` (gunicorn) and drive /healthz and the check endpoint with wrk.

    The database is a fresh SQLite file, or with `postgres_url` a fresh PostgreSQL database created
    beside that one and dropped afterwards. Returns per-concurrency results for both endpoints, worker
    memory after the load and the server's start-up time. Raises RuntimeError when wrk is absent or
    the server does not start.
    """
    from .bench_http import refresh_statistics
    from .live_server import fresh_postgres_database, new_site_key, serve, service_env

    if shutil.which("wrk") is None:
        raise RuntimeError("wrk not installed")
    tmp = Path(tempfile.mkdtemp(prefix="bench-http-"))
    drop = None
    if postgres_url:
        database_url, drop = fresh_postgres_database(postgres_url)
    else:
        database_url = f"sqlite:///{tmp / 'moderation.sqlite3'}"
    key = new_site_key(database_url)
    script = tmp / "check.lua"
    script.write_text(WRK_CHECK_LUA % {"key": key})
    results: dict[str, Any] = {
        "workers": workers,
        "seconds": seconds,
        "database": "PostgreSQL" if postgres_url else "SQLite (WAL)",
        "levels": [],
    }
    started = time.perf_counter()
    try:
        env = service_env(tmp, database_url, model_dir)
        with serve(env, tmp / "server.log", workers=workers, ready_timeout=120, ready_path="/readyz") as server:
            results["ready_s"] = time.perf_counter() - started
            import httpx

            results["model"] = httpx.get(f"{server.base}/readyz", timeout=10).json()["checks"]["model"]
            check_url = f"{server.base}/api/v1/comments/check"
            # Warm up every worker (model loaded, connections open) before measuring; PostgreSQL then gets
            # the planner statistics autovacuum would give it within a minute (bench_http.refresh_statistics).
            _run_wrk(check_url, 2, workers * 2, script)
            refresh_statistics(database_url)
            results["analyzed"] = database_url.startswith("postgresql")
            for level in levels:
                healthz = _run_wrk(f"{server.base}/healthz", seconds, level, None)
                check = _run_wrk(check_url, seconds, level, script)
                results["levels"].append({"connections": level, "healthz": healthz, "check": check})
            results["open_loop"] = _open_loop(check_url, key, seconds)
            threads = re.search(r"(\d+) thread\(s\) each", server.log())
            results["threads"] = int(threads.group(1)) if threads else None
            results["memory"] = {str(pid): _memory_mb(pid) for pid in server.workers()}
            results["master_memory"] = _memory_mb(server.process.pid)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if drop is not None:
            drop()
    return results


# --- profiles ----------------------------------------------------------------------------------------------------

_WHERE = (
    ("moderation/core/text.py", "normalisation (moderation/core/text.py)"),
    ("moderation/core/features.py", "features (moderation/core/features.py)"),
    ("moderation/core/classifier.py", "model and clues (moderation/core/classifier.py)"),
    ("moderation/", "other moderation code"),
    ("confusable_homoglyphs", "confusable_homoglyphs"),
    ("tldextract", "tldextract"),
    ("nltk", "NLTK tokenizer/stemmer"),
    ("sklearn", "scikit-learn"),
    ("scipy", "SciPy sparse"),
    ("numpy", "NumPy"),
    ("sqlalchemy", "SQLAlchemy"),
    ("psycopg", "psycopg"),
    ("werkzeug", "Werkzeug"),
    ("flask", "Flask"),
    ("json", "json"),
)


def _bucket(filename: str, function: str) -> str:
    for fragment, name in _WHERE:
        if fragment in filename:
            return name
    if filename == "~":
        if "sqlite3." in function:
            return "SQLite itself (sqlite3 execute/commit)"
        if "re.Pattern" in function or "regex" in function:
            return "regular expressions (C)"
        return "Python built-ins (C)"
    return "other Python" if "site-packages" not in filename else "other libraries"


def summarise_profile(profile: cProfile.Profile, total_s: float, calls: int, top: int = 12) -> dict[str, Any]:
    """Self time grouped by where it goes, plus the top functions by self time."""
    stats = pstats.Stats(profile)
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    groups: dict[str, float] = {}
    rows = []
    for (filename, line, function), (_, ncalls, tottime, cumtime, _) in raw.items():
        groups[_bucket(filename, function)] = groups.get(_bucket(filename, function), 0.0) + tottime
        rows.append((tottime, cumtime, ncalls, f"{Path(filename).name}:{line}({function})"))
    profiled = sum(groups.values()) or 1.0
    rows.sort(reverse=True)
    return {
        "calls": calls,
        "wall_s": total_s,
        "per_call_ms": total_s / calls * 1000,
        "groups": sorted(((k, v / profiled) for k, v in groups.items()), key=lambda kv: -kv[1]),
        "top": [
            {
                "function": name,
                "calls": int(n),
                "self_ms_per_call": t / calls * 1000,
                "cum_ms_per_call": c / calls * 1000,
            }
            for t, c, n, name in rows[:top]
        ],
    }


def profile_scoring(model: Any, comments: Sequence[Comment]) -> dict[str, Any]:
    """cProfile of `model.score` over `comments`, one at a time."""
    for comment in comments[:20]:
        model.score(comment)
    profile = cProfile.Profile()
    started = time.perf_counter()
    profile.enable()
    for comment in comments:
        model.score(comment)
    profile.disable()
    return summarise_profile(profile, time.perf_counter() - started, len(comments))


def profile_check_request(model_dir: Path, comments: Sequence[Comment], *, healthz_calls: int = 500) -> dict[str, Any]:
    """cProfile of whole check requests through the Flask test client (SQLite), and the same for /healthz."""
    from .live_server import in_process

    with (
        tempfile.TemporaryDirectory(prefix="bench-profile-") as scratch,
        in_process(Path(scratch), model_dir, "bench") as running,
    ):
        client, headers = running.client, running.headers

        def body(i: int, comment: Comment) -> dict[str, str]:
            return {
                "content": comment.content or "empty",
                "author_name": comment.author_name,
                "user_ip": f"10.1.{i // 250 % 250}.{i % 250 + 1}",
                "user_agent": "Mozilla/5.0",
            }

        for i, comment in enumerate(comments[:20]):
            assert client.post("/api/v1/comments/check", json=body(i, comment), headers=headers).status_code == 200
        profile = cProfile.Profile()
        started = time.perf_counter()
        profile.enable()
        for i, comment in enumerate(comments):
            client.post("/api/v1/comments/check", json=body(i + 100, comment), headers=headers)
        profile.disable()
        check = summarise_profile(profile, time.perf_counter() - started, len(comments))
        started = time.perf_counter()
        for _ in range(healthz_calls):
            client.get("/healthz")
        healthz_ms = (time.perf_counter() - started) / healthz_calls * 1000
        unprofiled = time.perf_counter()
        for i, comment in enumerate(comments):
            client.post("/api/v1/comments/check", json=body(i + 100000, comment), headers=headers)
        check_ms = (time.perf_counter() - unprofiled) / len(comments) * 1000
    return {"check_profile": check, "healthz_ms": healthz_ms, "check_ms": check_ms, "ratio": check_ms / healthz_ms}
