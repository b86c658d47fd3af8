"""Run the benchmark suite and write the report: accuracy against peer filters, speed, load, scaling.

    .venv/bin/python -m benchmarks.run --quick --out docs/benchmarks     # ~3 minutes on an idle 2-core machine
    .venv/bin/python -m benchmarks.run --full  --out docs/benchmarks     # every split and size; much longer

Writes `<out>/results-<mode>.json`, PNG charts in `<out>/`, and the Markdown report `<out>.md`
(docs/benchmarks.md for the default). Needs the public corpora (`--data`, default ../shared/datasets or
MODERATION_DATA_DIR); bogofilter, SpamAssassin and wrk are used when installed and their parts are
skipped with the reason otherwise. Machine details (CPU, cores, RAM, load, versions, git commit) are
recorded beside the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.exc import SQLAlchemyError

from .accuracy import METHODS, SplitRuns, compare, mean_metrics
from .peers import PEERS

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mode:
    """How much of the suite to run."""

    name: str
    protocols: tuple[str, ...]
    method_splits: dict[str, int] = field(default_factory=dict)  # method → at most N splits per protocol
    skip: dict[str, tuple[str, ...]] = field(default_factory=dict)  # protocol → methods not run there
    inner_folds: int = 3
    latency_n: int = 1000
    batch_n: int = 3000
    profile_n: int = 300
    request_n: int = 200
    http_levels: tuple[int, ...] = (1, 4, 16, 64)
    http_seconds: float = 3
    sizes: tuple[int, ...] = (1_000, 3_000, 10_000)


MODES = {
    "quick": Mode(
        "quick",
        protocols=("unseen", "lovo-youtube", "sms-domain"),
        method_splits={"spamassassin": 1},
        skip={"sms-domain": ("spamassassin",)},
    ),
    "full": Mode(
        "full",
        protocols=("unseen", "lovo-youtube", "lovo", "sms-domain"),
        latency_n=3000,
        batch_n=10000,
        profile_n=1000,
        request_n=500,
        http_levels=(1, 2, 4, 8, 16, 32, 64),
        http_seconds=10,
        sizes=(1_000, 3_000, 10_000, 30_000, 100_000),
    ),
}


class Log:
    """Progress lines with the elapsed time, on stderr."""

    def __init__(self) -> None:
        self.started = time.perf_counter()

    def __call__(self, message: str) -> None:
        print(f"[{time.perf_counter() - self.started:6.0f} s] {message}", file=sys.stderr, flush=True)


def _default_data_dir() -> Path:
    configured = os.environ.get("MODERATION_DATA_DIR")
    return Path(configured) if configured else ROOT.parent / "shared" / "datasets"


# --- the run -----------------------------------------------------------------------------------------------


def run_accuracy(examples: list[Any], mode: Mode, log: Log) -> tuple[dict[str, Any], list[SplitRuns]]:
    """Every available method on every split of the mode's protocols."""
    from moderation.core.evaluation import make_splits

    skipped = {name: reason for name, cls in PEERS.items() if (reason := cls.missing())}
    for name, reason in skipped.items():
        log(f"skipping {name}: {reason}")
    results: list[SplitRuns] = []
    for protocol in mode.protocols:
        splits = make_splits(examples, [protocol])
        methods = [m for m in METHODS if m not in skipped and m not in mode.skip.get(protocol, ())]
        log(f"accuracy: {protocol}, {len(splits)} splits, methods {', '.join(methods)}")
        results += compare(splits, methods, folds=mode.inner_folds, method_splits=mode.method_splits, progress=log)
    summary = {
        "skipped": skipped,
        "splits": [
            {
                "protocol": r.protocol,
                "name": r.name,
                "n_train": r.n_train,
                "methods": {
                    m: {**run.metrics, "fit_s": run.fit_seconds, "seconds": run.seconds, "notes": run.notes}
                    for m, run in r.runs.items()
                },
            }
            for r in results
        ],
        "means": {p: {m: mean_metrics(results, p, m) for m in METHODS} for p in mode.protocols},
    }
    return summary, results


def run_speed(examples: list[Any], data_dir: Path, mode: Mode, work: Path, log: Log) -> dict[str, Any]:
    """Train the production model on all corpora (timed), then latency, throughput, load, memory, HTTP, profiles."""
    from moderation.core.model_store import load_model
    from moderation.core.training import train_and_save

    from . import speed

    out: dict[str, Any] = {}
    model_dir = work / "models"
    log("training the production model on the starter corpus + all corpora (as `moderation train` does)")
    started = time.perf_counter()
    manifest = train_and_save(model_dir, data_dir)
    out["training"] = {
        "seconds": time.perf_counter() - started,
        "examples": manifest.data["counts"]["total"] if isinstance(manifest.data.get("counts"), dict) else None,
        "artifact_mb": manifest.size_bytes / 1e6,
        "final_fit_s": manifest.metrics.get("final_fit_seconds"),
    }
    log(f"  trained in {out['training']['seconds']:.0f} s, artifact {out['training']['artifact_mb']:.1f} MB")
    started = time.perf_counter()
    model = load_model(model_dir)
    out["load_in_process_s"] = time.perf_counter() - started
    rng = np.random.default_rng(1)
    comments = [examples[i].comment for i in rng.choice(len(examples), size=max(mode.batch_n, mode.latency_n))]
    log(f"in-process latency over {mode.latency_n} single comments")
    summary, samples = speed.latency(model, comments[: mode.latency_n])
    out["latency"] = summary
    out["latency_samples_ms"] = [round(float(s) * 1000, 4) for s in samples]
    log(f"  p50 {summary['p50_ms']:.2f} ms, p99 {summary['p99_ms']:.2f} ms; batch throughput over {mode.batch_n}")
    out["batch"] = speed.batch_throughput(model, comments[: mode.batch_n])
    log("fresh-process load time and memory")
    out["fresh_process"] = speed.load_in_fresh_process(model_dir)
    if PEERS["bogofilter"].missing() is None:
        log("bogofilter per-comment cost (same comments)")
        out["bogofilter"] = speed.bogofilter_costs(examples, comments[: mode.batch_n])
    log(f"profiling {mode.profile_n} single-comment scores")
    out["profile_scoring"] = speed.profile_scoring(model, comments[: mode.profile_n])
    log(f"profiling {mode.request_n} check requests in-process")
    out["profile_request"] = speed.profile_check_request(model_dir, comments[: mode.request_n])
    try:
        log(f"HTTP (SQLite): gunicorn (2 workers) + wrk at {mode.http_levels}, {mode.http_seconds} s each")
        out["http"] = speed.http_load(model_dir, mode.http_levels, seconds=mode.http_seconds)
    except (RuntimeError, OSError) as exc:
        log(f"  HTTP skipped: {exc}")
        out["http"] = {"skipped": str(exc)}
    postgres = os.environ.get("MODERATION_TEST_POSTGRES_URL")
    if postgres and "skipped" not in out["http"]:
        try:
            log("HTTP (PostgreSQL): the same load")
            out["http_postgres"] = speed.http_load(
                model_dir, mode.http_levels, seconds=mode.http_seconds, postgres_url=postgres
            )
        except (RuntimeError, OSError, SQLAlchemyError) as exc:
            log(f"  PostgreSQL HTTP skipped: {exc}")
            out["http_postgres"] = {"skipped": str(exc)}
    else:
        out["http_postgres"] = {"skipped": "MODERATION_TEST_POSTGRES_URL not set"}
    return out


def main(argv: list[str] | None = None) -> int:
    """Parse options, run the suite, write the JSON results, charts and the report."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--quick", dest="mode", action="store_const", const="quick", help="laptop-sized run (default)")
    group.add_argument("--full", dest="mode", action="store_const", const="full", help="every split and size")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks", help="folder for JSON and charts")
    parser.add_argument("--report", type=Path, help="Markdown report path (default: <out>.md)")
    parser.add_argument("--data", type=Path, default=None, help="folder of public corpora")
    parser.add_argument(
        "--only", choices=["accuracy", "speed", "scaling"], action="append", help="run only these parts"
    )
    parser.add_argument(
        "--reuse-accuracy",
        type=Path,
        metavar="RESULTS_JSON",
        help="take the accuracy part from an earlier run's results JSON instead of running it "
        "(e.g. to redo the timings on a quieter machine); the report says so",
    )
    args = parser.parse_args(argv)
    mode = MODES[args.mode or "quick"]
    data_dir = args.data or _default_data_dir()
    if not (data_dir / "youtube-spam-collection").is_dir():
        parser.error(f"--data: expected the public corpora in {data_dir}, found no youtube-spam-collection there")
    parts = args.only or ["accuracy", "speed", "scaling"]

    from moderation.core.training import build_training_set

    from . import report, scaling, speed

    log = Log()
    results: dict[str, Any] = {"mode": mode.name, "machine": speed.machine_info(ROOT), "data_dir": str(data_dir)}
    log(f"{mode.name} mode on {results['machine']['cpu']} ({results['machine']['cores']} cores)")
    examples = build_training_set(data_dir)
    log(f"{len(examples)} examples after deduplication")
    accuracy_runs: list[SplitRuns] = []
    with tempfile.TemporaryDirectory(prefix="bench-run-") as scratch:
        if args.reuse_accuracy:
            earlier = json.loads(args.reuse_accuracy.read_text())
            results["accuracy"] = earlier["accuracy"]
            results["accuracy_from"] = {
                "file": args.reuse_accuracy.name,
                "mode": earlier["mode"],
                "git_commit": earlier["machine"]["git_commit"],
                "load_average": earlier["machine"]["load_average"],
            }
            log(f"accuracy reused from {args.reuse_accuracy}")
        elif "accuracy" in parts:
            results["accuracy"], accuracy_runs = run_accuracy(examples, mode, log)
        if "speed" in parts:
            results["speed"] = run_speed(examples, data_dir, mode, Path(scratch), log)
        if "scaling" in parts:
            log(f"scaling: {', '.join(map(str, mode.sizes))} comments (resampled)")
            probe = [e.comment for e in examples[:: max(1, len(examples) // 500)]]
            results["scaling"] = scaling.grow(examples, mode.sizes, probe, progress=log)
    results["seconds"] = time.perf_counter() - log.started
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    results["cpu_seconds"] = sum(u.ru_utime + u.ru_stime for u in usage)
    results["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    out_dir = args.out
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"results-{mode.name}.json").write_text(json.dumps(results, indent=1, default=float) + "\n")
    report_path = args.report or out_dir.with_suffix(".md")
    report.write(results, accuracy_runs, out_dir, report_path)
    log(f"wrote {report_path} and {out_dir}/ in {results['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
