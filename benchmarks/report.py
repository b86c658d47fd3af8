"""Turn a benchmark run's results into the Markdown report and its PNG charts."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from moderation.core.evaluation import PROTOCOLS

from .accuracy import METHOD_TITLES, METHODS, REQUIRED_ACCURACY, SplitRuns

TUBESPAM = (
    "T. C. Alberto, J. V. Lochter, T. A. Almeida, “TubeSpam: Comment Spam Filtering on YouTube”, "
    "ICMLA 2015, pp. 138–143, doi:10.1109/ICMLA.2015.37"
)


def _fmt(value: Any, pattern: str = "{:.3f}") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return pattern.format(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *("| " + " | ".join(r) + " |" for r in rows)]


_MEAN_COLUMNS = (
    ("mcc", "MCC @0.5", "{:.3f}"),
    ("f1", "F1 @0.5", "{:.3f}"),
    ("mcc_at_spam", "MCC @auto-spam", "{:.3f}"),
    ("ham_blocked", "ham blocked", "{:.1%}"),
    ("spam_caught", "spam caught", "{:.1%}"),
    ("roc_auc", "ROC AUC", "{:.3f}"),
    ("recall_at_1pct_fpr", "recall @1% FPR", "{:.1%}"),
    ("review_share", "review workload", "{:.1%}"),
    ("auto_accuracy", "auto decisions right", "{:.2%}"),
)


def _accuracy_section(results: dict[str, Any], runs: Sequence[SplitRuns], out_dir: Path) -> list[str]:
    acc = results["accuracy"]
    lines = [
        "## Accuracy against other filters",
        "",
        "Every method is trained from scratch on the same training side of each split and nothing else; test",
        "texts never occur in training (deduplicated by normalised text). Each method's operating points come",
        "from its own out-of-fold scores on the training side (grouped inner folds), never from the test side:",
        'the **auto-spam threshold** lets ≤ 1% of held-out training ham through ("ham blocked" and "spam',
        'caught" are measured there on the test side), and the **review band** is the narrowest score interval',
        f"outside which automatic decisions were ≥ {REQUIRED_ACCURACY:.1%} right; the **review workload** is the",
        'share of test comments that fall inside it (left for a human), and "auto decisions right" is how',
        "often the decisions outside it were right on the test side. MCC and F1 are also given at p ≥ 0.5.",
        "Recall at 1% FPR is read off the test ROC curve (an oracle operating point, for comparison only).",
        "",
        "- **this project**: `moderation.core.classifier.fit_model` (features + logistic regression + calibration),",
        "  the model `moderation train` and `moderation retrain` both fit (`core.training.fit_with_thresholds`).",
        "- **TF-IDF + LR baseline**: `train_baseline`, scikit-learn defaults on the raw text.",
        "- **bogofilter**: Debian's bogofilter, default parameters, trained with `bogofilter -s/-n -M`, scored",
        "  with `-M -T` (the spamicity). Words it has not seen score its default robx = 0.52, so short comments",
        "  with few known words land just above 0.5: its MCC at its own auto-spam threshold and its ROC AUC are",
        "  the fairer figures.",
        "- **SpamAssassin Bayes**: Debian's SpamAssassin, only the Bayes plugin and BAYES_xx rules loaded, network",
        "  tests and auto-learning off, trained with `sa-learn --spam/--ham --mbox`, scored through",
        "  `Mail::SpamAssassin->check` in one Perl process; the score is the Bayes probability. When Bayes gives",
        "  no verdict (too few known tokens) the score is 0.5.",
        "",
        "Each comment reaches the peers as an RFC-822 message: `From:` with the author's name, a UTF-8",
        "text/plain body with the content as written.",
        "",
    ]
    earlier = results.get("accuracy_from")
    if earlier:
        lines += [
            f"The accuracy figures come from a separate `--{earlier['mode']}` run of this suite "
            f"([`{earlier['file']}`](benchmarks/{earlier['file']}), commit {earlier['git_commit']}); the "
            f"timings from the run at commit {results['machine']['git_commit']} (accuracy does not depend on "
            "machine load, timings do, so each was taken when its conditions were best).",
            "",
        ]
    if acc.get("skipped"):
        lines += [f"Skipped: {', '.join(f'{k} ({v})' for k, v in acc['skipped'].items())}.", ""]
    for protocol, means in acc["means"].items():
        lines += [f"### {protocol}: {PROTOCOLS[protocol]}", ""]
        rows = []
        for method in METHODS:
            m = means.get(method) or {}
            if not m:
                continue
            total = sum(1 for s in acc["splits"] if s["protocol"] == protocol)
            splits = f"{int(m['splits'])}/{total}"
            rows.append([METHOD_TITLES[method], splits, *[_fmt(m.get(k), p) for k, _, p in _MEAN_COLUMNS]])
        lines += ["Means over the splits each method ran on:", ""]
        counts = {int(m["splits"]) for m in means.values() if m}
        if len(counts) > 1:
            lines[-1:-1] = [
                "Methods ran on different numbers of splits here, so compare their means with care; the",
                "per-split table below has them side by side on the same held-out video.",
                "",
            ]
        lines += _table(["method", "splits", *[t for _, t, _ in _MEAN_COLUMNS]], rows)
        per_split = []
        for s in (s for s in acc["splits"] if s["protocol"] == protocol):
            for method, m in s["methods"].items():
                per_split.append(
                    [
                        s["name"],
                        METHOD_TITLES[method],
                        f"{m['n']} ({m['spam']}/{m['ham']})",
                        _fmt(m["mcc"]),
                        _fmt(m["mcc_at_spam"]),
                        _fmt(m["ham_blocked"], "{:.1%}"),
                        _fmt(m["spam_caught"], "{:.1%}"),
                        _fmt(m["roc_auc"]),
                        _fmt(m["review_share"], "{:.1%}"),
                        _fmt(m["fit_s"], "{:.1f}"),
                        "; ".join(m.get("notes") or []),
                    ]
                )
        lines += ["", "<details><summary>Per split</summary>", ""]
        lines += _table(
            [
                "held out",
                "method",
                "test n (spam/ham)",
                "MCC @0.5",
                "MCC @auto",
                "ham blocked",
                "spam caught",
                "ROC AUC",
                "review",
                "final fit s",
                "notes",
            ],
            per_split,
        )
        lines += ["", "</details>", ""]
        chart = f"accuracy-{protocol}.png"
        _plot_accuracy(acc["means"][protocol], out_dir / chart, protocol)
        roc = f"roc-{protocol}.png"
        protocol_runs = [r for r in runs if r.protocol == protocol]
        if protocol_runs:  # reused accuracy results carry no per-comment scores: keep the earlier chart
            _plot_roc(protocol_runs, out_dir / roc, protocol)
        lines += [f"![Accuracy, {protocol}](benchmarks/{chart})", "", f"![ROC, {protocol}](benchmarks/{roc})", ""]
    lines += [
        "### Published TubeSpam results, for context",
        "",
        f"{TUBESPAM}. The abstract reports that decision trees, logistic regression, Bernoulli naive Bayes,",
        "random forests and linear and Gaussian SVMs were statistically equivalent at 99.9% confidence. We could",
        "not retrieve the paper's per-video table from the sources available to this benchmark run, so its",
        "figures are **not** reproduced here rather than quoted from memory. The abstract does not say whether",
        "the paper's test comments came from videos seen in training; ours never do (leave-one-video-out), so",
        "any comparison with its figures needs the paper's protocol at hand.",
        "",
    ]
    return lines


def _plot_accuracy(means: dict[str, dict[str, float]], path: Path, protocol: str) -> None:
    from matplotlib.figure import Figure

    methods = [m for m in METHODS if means.get(m)]
    figure = Figure(figsize=(10, 3.6), layout="constrained")
    left, right = figure.subplots(1, 2)
    keys = [
        ("mcc", "MCC @0.5"),
        ("mcc_at_spam", "MCC @auto-spam"),
        ("roc_auc", "ROC AUC"),
        ("recall_at_1pct_fpr", "recall @1% FPR"),
    ]
    width = 0.8 / max(1, len(methods))
    for i, method in enumerate(methods):
        xs = np.arange(len(keys)) + i * width
        left.bar(xs, [means[method].get(k, np.nan) for k, _ in keys], width, label=METHOD_TITLES[method])
        right.bar(
            np.arange(2) + i * width,
            [means[method].get("review_share", np.nan), means[method].get("ham_blocked", np.nan)],
            width,
            label=METHOD_TITLES[method],
        )
    left.set_xticks(np.arange(len(keys)) + width * (len(methods) - 1) / 2, [t for _, t in keys], fontsize=8)
    left.set_ylim(0, 1)
    left.set_title("higher is better", fontsize=9)
    left.legend(fontsize=7, loc="lower left")
    right.set_xticks(np.arange(2) + width * (len(methods) - 1) / 2, ["review workload", "ham blocked"], fontsize=8)
    right.set_ylim(0, 1)
    right.set_title("lower is better", fontsize=9)
    figure.suptitle(f"Mean over held-out splits — {protocol}")
    figure.savefig(path, dpi=80)


def _plot_roc(runs: Sequence[SplitRuns], path: Path, protocol: str) -> None:
    from matplotlib.figure import Figure
    from sklearn.metrics import roc_curve

    figure = Figure(figsize=(5, 4), layout="constrained")
    ax = figure.subplots()
    for method in METHODS:
        with_method = [r for r in runs if method in r.runs]
        if not with_method:
            continue
        y = np.concatenate([r.y for r in with_method])
        scores = np.concatenate([r.runs[method].test_scores for r in with_method])
        fpr, tpr, _ = roc_curve(y, scores)
        ax.plot(fpr, tpr, label=f"{METHOD_TITLES[method]} ({len(with_method)} splits)")
    ax.axvline(0.01, color="grey", linestyle=":", linewidth=1)
    ax.set_xscale("symlog", linthresh=0.01)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("ham blocked (FPR, symlog)")
    ax.set_ylabel("spam caught (TPR)")
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(f"Test ROC, splits pooled — {protocol}", fontsize=10)
    figure.savefig(path, dpi=80)


def _standalone(out_dir: Path, name: str) -> list[str]:
    """The write-up a standalone benchmark keeps beside its charts (`<out>/<name>.md`), embedded as it stands.

    Those benchmarks (the adaptation curve, latency during refits) run on their own, not in this suite, so a
    regenerated report carries their last write-up instead of dropping it. Their relative links point into
    `<out>/`; the report's links say `benchmarks/...` like the rest.
    """
    path = out_dir / f"{name}.md"
    if not path.exists():
        return []
    text = re.sub(r"\]\((?![a-z]+:|/|#)", "](benchmarks/", path.read_text(encoding="utf-8"))
    return [*text.rstrip().splitlines(), ""]


def _speed_section(results: dict[str, Any], out_dir: Path) -> list[str]:
    sp = results["speed"]
    lat, batch, fresh, training = sp["latency"], sp["batch"], sp["fresh_process"], sp["training"]
    lines = [
        "## Speed",
        "",
        f"The model used here is the production one: trained on the starter corpus and all public corpora "
        f"({training['examples']} comments after deduplication) exactly as `moderation train` does, in "
        f"**{training['seconds']:.1f} s** (thresholds from 5 grouped out-of-fold fits, then the final fit with its "
        f"own calibration folds: {_fmt(training['final_fit_s'], '{:.1f}')} s); artifact "
        f"{training['artifact_mb']:.1f} MB.",
        "",
        "### In-process",
        "",
    ]
    lines += _table(
        ["measure", "value"],
        [
            [
                f"one comment, `SpamModel.score` (n={lat['n']}) p50 / p95 / p99",
                f"{lat['p50_ms']:.2f} / {lat['p95_ms']:.2f} / {lat['p99_ms']:.2f} ms",
            ],
            ["batch `score_many` (probability + clues)", f"{batch['score_many_per_s']:,.0f} comments/s"],
            ["batch `predict_proba` (probability only)", f"{batch['predict_proba_per_s']:,.0f} comments/s"],
            [
                "model load in a running process (`load_model`: hash check + unpickle)",
                f"{sp['load_in_process_s'] * 1000:.0f} ms",
            ],
            [
                "fresh interpreter: import moderation / `load_model` (incl. first import of scikit-learn, SciPy, "
                "NLTK while unpickling) / first score",
                f"{fresh['import_s']:.2f} s / {fresh['load_s']:.2f} s / {fresh['first_score_s'] * 1000:.0f} ms",
            ],
            [
                "fresh interpreter resident memory: before load / loaded / after 200 scores",
                f"{fresh['rss_before_load_mb']:.0f} / {fresh['rss_after_load_mb']:.0f} / "
                f"{fresh['rss_after_scoring_mb']:.0f} MB",
            ],
        ],
    )
    _plot_latency(np.asarray(sp["latency_samples_ms"]), out_dir / "latency.png")
    lines += ["", "![In-process latency](benchmarks/latency.png)", ""]
    bogo = sp.get("bogofilter")
    http = sp.get("http", {})
    c1 = next((lv for lv in http.get("levels", []) if lv["connections"] == 1), None)
    lines += ["### Per-comment cost against bogofilter (same comments, same run)", ""]
    rows = [
        ["this project, one comment in-process (p50)", f"{lat['p50_ms']:.3f} ms"],
        ["this project, batch (`predict_proba`)", f"{1000 / batch['predict_proba_per_s']:.3f} ms"],
    ]
    if c1:
        rows.append(
            ["this project, HTTP check at concurrency 1 (p50, includes DB write)", f"{c1['check']['p50_ms']:.2f} ms"]
        )
    if bogo:
        rows += [
            [
                f"bogofilter, bulk (`-M -T`, {bogo['bulk_n']} messages in one process; mbox written beforehand)",
                f"{bogo['bulk_per_comment_ms']:.3f} ms",
            ],
            [
                "bogofilter, one process per message, spawned from Python (p50 / p99)",
                f"{bogo['process_p50_ms']:.2f} / {bogo['process_p99_ms']:.2f} ms",
            ],
            [
                f"training on {bogo['train_n']} comments: bogofilter / this project",
                f"{bogo['fit_s']:.1f} s / {training['seconds']:.1f} s",
            ],
        ]
    lines += _table(["measure", "time per comment"], rows)
    lines += [""]
    lines += _http_lines(http, out_dir, "http.png")
    postgres = sp.get("http_postgres") or {}
    if postgres.get("levels"):
        lines += _http_lines(postgres, out_dir, "http-postgres.png")
    elif postgres:
        lines += [f"PostgreSQL under load: skipped ({postgres.get('skipped')}).", ""]
    lines += _profile_lines(sp)
    return lines


def _http_lines(http: dict[str, Any], out_dir: Path, chart: str) -> list[str]:
    lines = [f"### HTTP under load (gunicorn + wrk, {http.get('database', 'SQLite')})", ""]
    if "skipped" in http:
        return [*lines, f"Skipped: {http['skipped']}.", ""]
    lines += [
        f"`moderation serve` (gunicorn, {_workers(http)}, {http['database']} database, rate limit off,",
        f"model `{http.get('model')}` loaded in every worker before measuring),",
        f"closed loop with wrk for {http['seconds']:.0f} s per level. Every check is a different comment (so the",
        "duplicate and flood rules stay quiet) and runs the whole path: authentication, rules, model, policy, and",
        "the database write of the comment and its audit event. `/healthz` is the framework's floor.",
    ]
    if http.get("analyzed"):
        lines += [
            "The database is ANALYZEd after the warm-up, as autovacuum does within about a minute of a real start",
            "(without planner statistics the history rules' counts use the wrong index).",
        ]
    lines.append("")
    rows = []
    for lv in http["levels"]:
        h, c = lv["healthz"], lv["check"]
        errors = int(c["non_2xx"] + c["socket_errors"] + h["non_2xx"] + h["socket_errors"])
        rows.append(
            [
                str(lv["connections"]),
                f"{h['rps']:,.0f}",
                f"{h['p50_ms']:.2f} / {h['p99_ms']:.2f}",
                f"{c['rps']:,.0f}",
                f"{c['p50_ms']:.2f} / {c['p99_ms']:.2f}",
                f"{h['rps'] / c['rps']:.2f}" if c["rps"] else "–",
                str(errors),
            ]
        )
    lines += _table(
        [
            "connections",
            "healthz req/s",
            "healthz p50 / p99 ms",
            "check req/s",
            "check p50 / p99 ms",
            "healthz ÷ check throughput",
            "errors",
        ],
        rows,
    )
    paced = http.get("open_loop")
    if paced:
        lines += [
            "",
            f"At a fixed {paced['rate']:.0f} checks/s offered by {paced['clients']} concurrent clients (open loop, "
            f"{http['seconds']:.0f} s, latency counted from each request's scheduled time): "
            f"{paced['rps']:,.0f} checks/s served, p50 {paced['p50_ms']:.2f} ms, p90 {paced['p90_ms']:.2f} ms, "
            f"**p99 {paced['p99_ms']:.2f} ms**, {int(paced['non_2xx'])} errors.",
        ]
    memory = http.get("memory", {})
    if memory:
        rss = [m.get("rss_mb", float("nan")) for m in memory.values()]
        pss = [m.get("pss_mb", float("nan")) for m in memory.values()]
        lines += [
            "",
            f"Memory per worker after the load: RSS {', '.join(f'{x:.0f}' for x in rss)} MB; "
            f"PSS (shared pages split) {', '.join(f'{x:.0f}' for x in pss)} MB. "
            f"Server ready {http.get('ready_s', float('nan')):.1f} s after start.",
        ]
    _plot_http(http, out_dir / chart)
    lines += ["", f"![HTTP throughput and latency, {http['database']}](benchmarks/{chart})", ""]
    return lines


def _workers(http: dict[str, Any]) -> str:
    """How an HTTP run's workers served, e.g. `2 sync workers` or `2 workers × 4 threads (gthread)`."""
    threads = http.get("threads") or 1
    if threads == 1:
        return f"{http['workers']} sync workers"
    return f"{http['workers']} workers × {threads} threads (gthread)"


def _profile_lines(sp: dict[str, Any]) -> list[str]:
    prof, req = sp["profile_scoring"], sp["profile_request"]
    lines = [
        "### Where the time goes",
        "",
        f"cProfile over {prof['calls']} single-comment scores ({prof['per_call_ms']:.2f} ms each under the profiler),",
        "self time grouped by where it is spent:",
        "",
    ]
    lines += _table(["where", "share"], [[k, f"{v:.1%}"] for k, v in prof["groups"][:10]])
    lines += ["", "Top functions by self time (per scored comment):", ""]
    lines += _table(
        ["function", "calls", "self ms", "cumulative ms"],
        [
            [f"`{t['function']}`", str(t["calls"]), f"{t['self_ms_per_call']:.3f}", f"{t['cum_ms_per_call']:.3f}"]
            for t in prof["top"]
        ],
    )
    check = req["check_profile"]
    lines += [
        "",
        f"The whole check request in-process (Flask test client, SQLite): **{req['check_ms']:.2f} ms** per check "
        f"against {req['healthz_ms']:.3f} ms for `/healthz` — a ratio of **{req['ratio']:.1f}×**. Under cProfile, "
        "self time of a check request:",
        "",
    ]
    lines += _table(["where", "share"], [[k, f"{v:.1%}"] for k, v in check["groups"][:10]])
    lines += [""]
    return lines


def _scaling_section(rows: list[dict[str, Any]], out_dir: Path) -> list[str]:
    lines = [
        "## Growth with corpus size",
        "",
        "Training sets drawn from the deduplicated corpora (≈ 7.5k distinct comments; larger sizes resample",
        "with replacement, so the vocabulary stops growing). `fit_model` only (features, calibration folds,",
        "final fit; `moderation train` adds out-of-fold fits to choose thresholds). Load and memory in a fresh",
        "interpreter; latency and batch speed on the same 500 probe comments.",
        "",
    ]
    table = []
    for r in rows:
        table.append(
            [
                f"{r['n']:,}",
                f"{r['train_s']:.1f}",
                _fmt(r.get("bogofilter_train_s"), "{:.2f}"),
                f"{r['artifact_mb']:.1f}",
                f"{r['load_s']:.2f}",
                f"{r['rss_after_scoring_mb']:.0f}",
                f"{r['p50_ms']:.2f}",
                f"{r['p99_ms']:.2f}",
                f"{r['batch_per_s']:,.0f}",
            ]
        )
    lines += _table(
        [
            "comments",
            "train s",
            "bogofilter train s",
            "artifact MB",
            "load s",
            "RSS MB",
            "p50 ms",
            "p99 ms",
            "batch /s",
        ],
        table,
    )
    _plot_scaling(rows, out_dir / "scaling.png")
    lines += ["", "![Growth with corpus size](benchmarks/scaling.png)", ""]
    return lines


def _plot_latency(samples_ms: np.ndarray, path: Path) -> None:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 3), layout="constrained")
    ax = figure.subplots()
    ordered = np.sort(samples_ms)
    ax.plot(ordered, np.arange(1, len(ordered) + 1) / len(ordered))
    for q in (50, 95, 99):
        ax.axvline(np.percentile(ordered, q), color="grey", linestyle=":", linewidth=1)
        ax.text(np.percentile(ordered, q), 0.05, f"p{q}", fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("ms per comment (log)")
    ax.set_ylabel("share of comments")
    ax.set_title("In-process scoring latency, one comment at a time", fontsize=10)
    figure.savefig(path, dpi=80)


def _plot_http(http: dict[str, Any], path: Path) -> None:
    from matplotlib.figure import Figure

    levels = [lv["connections"] for lv in http["levels"]]
    figure = Figure(figsize=(10, 3.4), layout="constrained")
    left, right = figure.subplots(1, 2)
    for name in ("healthz", "check"):
        left.plot(levels, [lv[name]["rps"] for lv in http["levels"]], marker="o", label=name)
        right.plot(levels, [lv[name]["p99_ms"] for lv in http["levels"]], marker="o", label=f"{name} p99")
        right.plot(
            levels, [lv[name]["p50_ms"] for lv in http["levels"]], marker=".", linestyle="--", label=f"{name} p50"
        )
    for ax in (left, right):
        ax.set_xscale("log", base=2)
        ax.set_xticks(levels, [str(level) for level in levels])
        ax.set_xlabel("concurrent connections")
        ax.legend(fontsize=7)
    left.set_ylabel("requests/s")
    right.set_ylabel("ms")
    right.set_yscale("log")
    figure.suptitle(f"gunicorn, {http['workers']} workers, {http['database']}")
    figure.savefig(path, dpi=80)


def _plot_scaling(rows: list[dict[str, Any]], path: Path) -> None:
    from matplotlib.figure import Figure

    n = [r["n"] for r in rows]
    figure = Figure(figsize=(10, 3.2), layout="constrained")
    axes = figure.subplots(1, 3)
    axes[0].plot(n, [r["train_s"] for r in rows], marker="o", label="this project")
    if all("bogofilter_train_s" in r for r in rows):
        axes[0].plot(n, [r["bogofilter_train_s"] for r in rows], marker="o", label="bogofilter")
    axes[0].set_ylabel("training s")
    axes[0].legend(fontsize=7)
    axes[1].plot(n, [r["rss_after_scoring_mb"] for r in rows], marker="o", label="RSS MB")
    axes[1].plot(n, [r["artifact_mb"] for r in rows], marker="o", label="artifact MB")
    axes[1].legend(fontsize=7)
    axes[2].plot(n, [r["p50_ms"] for r in rows], marker="o", label="p50")
    axes[2].plot(n, [r["p99_ms"] for r in rows], marker="o", label="p99")
    axes[2].set_ylabel("ms per comment")
    axes[2].legend(fontsize=7)
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("training comments")
    figure.savefig(path, dpi=80)


def _machine_lines(results: dict[str, Any]) -> list[str]:
    m = results["machine"]
    rows = [
        ["CPU", f"{m['cpu']}, {m['cores']} logical cores"],
        ["memory", m["memory"]],
        [
            "load average (1/5/15 min) at start / end",
            f"{' '.join(map(str, m['load_average']))} / {' '.join(map(str, m.get('load_average_end', [])))}",
        ],
        ["OS", m["os"]],
        ["Python", m["python"]],
        ["libraries", ", ".join(f"{k} {v}" for k, v in m["libraries"].items())],
        ["peers", f"{m['bogofilter']}; {m['spamassassin']}; {m['wrk']}"],
        ["git commit", m["git_commit"]],
    ]
    return _table(["", ""], rows)


def _headlines(results: dict[str, Any]) -> list[str]:
    """A few sentences for a site owner, each computed from this run's figures."""
    out = []
    means = results.get("accuracy", {}).get("means", {})
    for protocol, by_method in means.items():
        ours = by_method.get("model") or {}
        peers = {m: v for m, v in by_method.items() if v and m != "model"}
        if not ours or not peers:
            continue
        best = max(peers, key=lambda m: peers[m]["mcc"])
        others = ", ".join(f"{METHOD_TITLES[m]} {v['review_share']:.0%}" for m, v in peers.items())
        title = "unseen site" if protocol == "unseen" else protocol
        base = by_method.get("baseline") or {}
        out.append(
            f"- **{title}**: MCC {ours['mcc']:.3f} (best other: {METHOD_TITLES[best]} {peers[best]['mcc']:.3f}), "
            f"ROC AUC {ours['roc_auc']:.3f} (baseline {base.get('roc_auc', float('nan')):.3f}), "
            f"recall at 1% FPR {ours['recall_at_1pct_fpr']:.1%} "
            f"(baseline {base.get('recall_at_1pct_fpr', float('nan')):.1%}), "
            f"{ours['ham_blocked']:.1%} of ham blocked while catching "
            f"{ours['spam_caught']:.1%} of spam; with automatic decisions held to {REQUIRED_ACCURACY:.1%} "
            f"right, {ours['review_share']:.0%} of comments are left for a human "
            f"(others: {others})."
        )
    speed = results.get("speed")
    if speed:
        lat, req = speed["latency"], speed["profile_request"]
        out.append(
            f"- **Speed**: scoring one comment takes {lat['p50_ms']:.2f} ms (p50, p99 {lat['p99_ms']:.1f} ms) "
            f"in-process; a whole check request in-process (rules with one history query, model, two SQLite "
            f"inserts and a commit) "
            f"takes {req['check_ms']:.1f} ms, {req['ratio']:.0f}× the framework's trivial endpoint, so the "
            f"model is about {lat['mean_ms'] / req['check_ms']:.0%} of a check; the rest is the web framework, "
            f"SQLAlchemy and SQLite (see *Where the time goes*)."
        )
        for key in ("http", "http_postgres"):
            http = speed.get(key, {})
            if http.get("levels"):
                out.append(_http_headline(http))
    return ["## Headlines", "", *out, ""] if out else []


def _http_headline(http: dict[str, Any]) -> str:
    """Best throughput, the concurrency-8 closed loop and the fixed-rate open loop of one HTTP run."""
    top = max(http["levels"], key=lambda lv: lv["check"]["rps"])
    text = (
        f"- **HTTP, {http['database']}** ({_workers(http)}): {top['check']['rps']:,.0f} checks/s at best "
        f"({top['connections']} connection{'s' if top['connections'] > 1 else ''}), against "
        f"{top['healthz']['rps']:,.0f} req/s for `/healthz`"
    )
    eight = next((lv for lv in http["levels"] if lv["connections"] == 8), None)
    if eight:
        text += f"; at 8 connections {eight['check']['rps']:,.0f} checks/s, p99 {eight['check']['p99_ms']:.1f} ms"
    paced = http.get("open_loop")
    if paced:
        text += f"; {paced['rate']:.0f} checks/s offered by {paced['clients']} clients: p99 {paced['p99_ms']:.1f} ms"
    return text + "."


def write(results: dict[str, Any], runs: Sequence[SplitRuns], out_dir: Path, report_path: Path) -> Path:
    """Write the Markdown report (charts into `out_dir`, linked relative to the report)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rel = os.path.relpath(out_dir, report_path.parent)
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `python -m benchmarks.run --{results['mode']}` in {results['seconds'] / 60:.1f} minutes "
        f"({results.get('cpu_seconds', float('nan')) / 60:.1f} CPU-minutes, this process and its children). "
        f"Raw figures: [`results-{results['mode']}.json`](benchmarks/results-{results['mode']}.json).",
        "",
        *_machine_lines(results),
        "",
    ]
    if results["mode"] == "quick":
        lines += [
            "This is a **quick** run: SpamAssassin (the slowest peer, ~10 ms per message plus a Perl start per",
            "call) runs on the first held-out video only and not on SMS; HTTP levels run 3 s each; scaling",
            "stops at 10k comments. `--full` runs everything.",
            "",
        ]
    load = results["machine"]["load_average"][0]
    cores = results["machine"]["cores"] or 1
    if load > cores:
        lines += [
            f"**Caveat:** the machine was shared while this ran (load average {load} on {cores} cores), so",
            "timings are pessimistic and noisier than on an idle machine; accuracy figures are unaffected.",
            "",
        ]
    lines += _headlines(results)
    if "accuracy" in results:
        lines += _accuracy_section(results, runs, out_dir)
    lines += _standalone(out_dir, "adaptation")
    if "speed" in results:
        lines += _speed_section(results, out_dir)
    lines += _standalone(out_dir, "refit-latency")
    if "scaling" in results:
        lines += _scaling_section(results["scaling"], out_dir)
    text = "\n".join(lines).replace("](benchmarks/", f"]({rel}/")
    report_path.write_text(text + "\n", encoding="utf-8")
    return report_path
