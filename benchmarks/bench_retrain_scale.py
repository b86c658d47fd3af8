"""Retrain at scale: time and peak memory of `moderation retrain` on N stored labelled comments.

Synthesises N labelled comments into a fresh SQLite database by resampling the public corpora and the
starter corpus and perturbing each copy (word dropout, swapped neighbours, a random suffix, case
changes), then runs `moderation retrain --force` in a child process and reads its wall time and peak
RSS (ru_maxrss of that child alone). No champion is trained first: with none, the challenger is
promoted after the same held-out comparison. Usage:

    .venv/bin/python benchmarks/bench_retrain_scale.py --data ../shared/datasets 10000 30000 100000
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODERATION = str(Path(sys.executable).parent / "moderation")


def perturb(text: str, rng: random.Random) -> str:
    """A plausible variant of `text`: drop or swap a word, change case, add a suffix."""
    words = text.split()
    if len(words) > 3 and rng.random() < 0.5:
        del words[rng.randrange(len(words))]
    if len(words) > 3 and rng.random() < 0.3:
        i = rng.randrange(len(words) - 1)
        words[i], words[i + 1] = words[i + 1], words[i]
    out = " ".join(words)
    if rng.random() < 0.2:
        out = out.upper() if rng.random() < 0.3 else out.lower()
    return f"{out} {rng.choice(['', '!', ' :)', ' thanks', ' lol', ' ok', '?'])}{rng.randint(0, 999)}"


def populate(url: str, n: int, data_dir: Path | None, *, sites: int = 20, seed: int = 0) -> None:
    """Insert `n` labelled comments over `sites` sites and 30 days, in bulk."""
    from sqlalchemy import insert

    from moderation.core.corpora import load_folder, load_starter
    from moderation.policy.rules import fingerprint
    from moderation.store import db
    from moderation.store.schema import CommentRecord, LabelRecord, Site

    rng = random.Random(seed)
    pool = load_starter() + (load_folder(data_dir) if data_dir else [])
    engine = db.make_engine(url)
    db.upgrade(engine)
    now = datetime.now(UTC)
    with engine.begin() as connection:
        rows = [{"name": f"site {i}", "key_hash": f"k{i}", "settings": {}} for i in range(sites)]
        connection.execute(insert(Site), rows)
    sources = ["moderator"] * 6 + ["feedback"] * 3 + ["akismet"]
    chunk = 5000
    for start in range(0, n, chunk):
        comments, labels = [], []
        for i in range(start, min(n, start + chunk)):
            example = rng.choice(pool)
            text = perturb(example.comment.content, rng)
            when = now - timedelta(days=30 * (n - i) / n)
            comments.append(
                {"id": i + 1, "site_id": rng.randint(1, sites), "created_at": when, "content": text,
                 "content_hash": fingerprint(text), "author_name": example.comment.author_name, "decision": "hold",
                 "status": "hold", "extra": {}, "reasons": [], "rules": []}
            )  # fmt: skip
            labels.append({"comment_id": i + 1, "label": example.label.value, "source": rng.choice(sources),
                           "actor": "bench", "created_at": when})  # fmt: skip
        with engine.begin() as connection:
            connection.execute(insert(CommentRecord), comments)
            connection.execute(insert(LabelRecord), labels)
    engine.dispose()


def run(n: int, data_dir: Path | None, workdir: Path) -> dict[str, float]:
    """Populate a database with `n` labels, bootstrap a champion, time `moderation retrain --force`."""
    url = f"sqlite:///{workdir / f'bench-{n}.sqlite3'}"
    started = time.perf_counter()
    populate(url, n, data_dir)
    populate_seconds = time.perf_counter() - started
    env = {**os.environ, "MODERATION_DATABASE_URL": url, "MODERATION_MODEL_DIR": str(workdir / f"models-{n}"),
           "MODERATION_DATA_DIR": str(data_dir or ""), "TMPDIR": str(workdir)}  # fmt: skip
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out:
        child = subprocess.Popen(
            [MODERATION, "retrain", "--force"], env=env, stdout=out, stderr=subprocess.STDOUT, text=True
        )
        _pid, status, usage = os.wait4(child.pid, 0)  # this child's own rusage: its peak RSS alone
        child.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - started
        out.seek(0)
        log = out.read()
    if child.returncode != 0:
        raise SystemExit(f"retrain failed ({child.returncode}):\n{log[-3000:]}")
    print(log, file=sys.stderr)
    return {"n": n, "populate_s": populate_seconds, "retrain_s": seconds, "peak_rss_mb": usage.ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[10_000, 30_000, 100_000])
    parser.add_argument("--data", type=Path, default=None, help="Folder of public corpora to resample from.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-retrain-") as folder:
        print("| stored labels | retrain wall time | peak RSS of the retrain process |")
        print("|---|---|---|")
        for n in args.sizes:
            r = run(n, args.data, Path(folder))
            print(f"| {n:,} | {r['retrain_s']:.0f} s | {r['peak_rss_mb']:.0f} MB |", flush=True)


if __name__ == "__main__":
    main()
