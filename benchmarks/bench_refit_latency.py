"""Check latency while the server refits sites' models in the background (learning without cron).

    .venv/bin/python benchmarks/bench_refit_latency.py [--database sqlite|postgres] [--rate 100] [--seconds 30]

Starts `moderation serve --workers 2` on a fresh database with a model trained on the starter corpus,
then sends checks at a fixed open-loop --rate (bench_http.run_open_loop: latency counted from each
request's scheduled time) in two windows of --seconds each:

1. quiet: no labels, nothing to refit;
2. refit: just before the window, --sites sites each get --labels stored labels (half spam, half ham,
   inserted in the database as a review queue would; PostgreSQL is ANALYZEd after it, as after the
   warm-up, see bench_http.refresh_statistics), with MODERATION_SITE_REFIT_SECONDS=2 so a worker's
   learner has them refitted during the window, publishes the new model and both workers reload it.

Prints p50/p90/p99 of both windows as JSON, with the refits the server logged (sites, seconds). Its
write-up lives in docs/benchmarks/refit-latency.md, which `benchmarks.run` embeds in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.bench_http import bodies, refresh_statistics, run_open_loop
from benchmarks.live_server import fresh_postgres_database, serve, service_env


def store_labels(database_url: str, sites: int, labels: int) -> list[int]:
    """Add `sites` sites with `labels` labelled comments each (half spam, half ham); returns their ids."""
    from datetime import UTC, datetime

    from moderation.policy.rules import fingerprint
    from moderation.store import db
    from moderation.store.schema import CommentRecord, LabelRecord
    from moderation.store.sites import create_site

    rng = random.Random(0)
    spam = ["join our discord server for the weekly meetup", "cheap followers for your page, dm me", "win a phone"]
    ham = ["see you at the station at {n}", "thanks, the fix in step {n} worked", "lovely photos from day {n}"]
    engine = db.make_engine(database_url)
    ids = []
    with db.make_sessionmaker(engine)() as session:
        for s in range(sites):
            site, _ = create_site(session, f"labelled {s}")
            ids.append(site.id)
            now = datetime.now(UTC)
            for i in range(labels):
                is_spam = i % 2 == 0
                text = f"{rng.choice(spam if is_spam else ham).format(n=i)} {rng.randint(1, 10**6)}"
                record = CommentRecord(
                    site_id=site.id, created_at=now, content=text, content_hash=fingerprint(text),
                    decision="hold", status="hold",
                )  # fmt: skip
                session.add(record)
                session.flush()
                label = "spam" if is_spam else "ham"
                session.add(LabelRecord(comment_id=record.id, label=label, source="moderator", actor="bench"))
        session.commit()
    engine.dispose()
    return ids


def published_since(database_url: str, since: datetime) -> list[float]:
    """Seconds from `since` to the creation of each model registered after it (the refits' results)."""
    from moderation.store import db, registry

    engine = db.make_engine(database_url)
    with db.make_sessionmaker(engine)() as session:
        found = [(row.created_at - since).total_seconds() for row in registry.list_versions(session)]
    engine.dispose()
    return sorted(round(s, 1) for s in found if s > 0)


def server_check(url: str, key: str) -> str:
    """One check's answer body."""
    import httpx

    headers = {"Authorization": f"Bearer {key}"}
    return httpx.post(url, json={"content": "hello there"}, headers=headers, timeout=10).text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--model-dir", type=Path, help="a model folder to serve instead of training one")
    parser.add_argument("--rate", type=float, default=100.0, help="open-loop checks/s")
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--sites", type=int, default=3)
    parser.add_argument("--labels", type=int, default=500)
    args = parser.parse_args()

    from benchmarks.live_server import new_site_key

    tmp = Path(tempfile.mkdtemp(prefix="bench_refit_"))
    drop = None
    if args.database == "postgres":
        base = os.environ.get("MODERATION_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
        database_url, drop = fresh_postgres_database(base)
    else:
        database_url = f"sqlite:///{tmp / 'moderation.sqlite3'}"
    key = new_site_key(database_url)
    env = service_env(
        tmp,
        database_url,
        args.model_dir or tmp / "models",
        TRAIN_ON_START="true",
        SITE_REFIT_SECONDS="2",
        SITE_REFIT_LABELS="100000",
        MODEL_RELOAD_SECONDS="5",
    )
    report: dict[str, object] = {"database": args.database, "rate": args.rate, "seconds": args.seconds}
    try:
        with serve(env, tmp / "server.log", workers=2, ready_timeout=600, ready_path="/readyz") as server:
            url = f"{server.base}/api/v1/comments/check"
            run_open_loop(url, 5, args.rate, 8, key, bodies(64, first=10_000))  # warm-up
            refresh_statistics(database_url)
            report["quiet"] = run_open_loop(url, args.seconds, args.rate, 8, key, bodies(256))
            store_labels(database_url, args.sites, args.labels)
            refresh_statistics(database_url)  # thousands of new rows: plans as autovacuum would soon make them
            started = datetime.now(UTC)
            report["refit"] = run_open_loop(url, args.seconds, args.rate, 8, key, bodies(256, first=1000))
            report["published_after_s"] = published_since(database_url, started)
            served = {json.loads(server_check(url, key))["model_version"] for _ in range(6)}
            report["served_after"] = sorted(served)
        print(json.dumps(report, indent=2))
    finally:
        if drop is not None:
            drop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
