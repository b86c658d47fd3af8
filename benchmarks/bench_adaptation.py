"""Adaptation curve: how fast a site's own labels teach the filter a comment domain it has never seen.

    .venv/bin/python benchmarks/bench_adaptation.py --data ../shared/datasets [--domain sms|youtube:<video>]

1. The base model is trained by the retrain pipeline on the starter corpus plus the public corpora
   *without* the held-out domain (default: without the SMS corpus; or without one YouTube video).
2. The domain (deduplicated, shuffled with a fixed seed) is split: the first 500 messages (half of
   a smaller domain) are the site's traffic, the rest is the evaluation set, never labelled.
3. The traffic goes through the real JSON API of the app (`POST /api/v1/comments/check`, then
   `POST /api/v1/comments/<id>/feedback` with the true label, as the site reporting spam and ham). After
   0, 50, 200 and 500 labels `retrain` runs (forced, no held-out slice: every label trains) and the
   evaluation set is scored with the promoted model and that site's correction — the path
   `checking.check_and_store` takes.
4. The comparison: a plain TF-IDF + logistic regression (`classifier.train_baseline`) trained from
   scratch on the same labels. With 0 labels it has nothing to learn from (ROC AUC 0.5, recall 0).

Prints a Markdown table of ROC AUC and recall at 1% false-positive rate.

    .venv/bin/python benchmarks/bench_adaptation.py --curve --draws 5 --plot docs/benchmarks/adaptation.png

is the published curve (`curve`): each shipped public corpus (SMS, YouTube) held out of the base model
in turn, several random draws of the site's labels, mean and spread, beside the baseline. Its write-up
lives in docs/benchmarks/adaptation.md, which `benchmarks.run` embeds in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

POINTS = (0, 50, 200, 500)


def split_domain(data_dir: Path, domain: str, work: Path) -> tuple[Path, list, list]:
    """A corpora folder without the domain, plus the domain's traffic (500) and evaluation examples."""
    from moderation.core.corpora import deduplicate, load_folder

    base = work / "corpora"
    base.mkdir()
    everything = deduplicate(load_folder(data_dir))
    if domain == "sms":
        shutil.copytree(data_dir / "youtube-spam-collection", base / "youtube-spam-collection")
        held = [e for e in everything if e.source == "sms"]
    else:
        video = domain.split(":", 1)[1]
        shutil.copytree(data_dir / "sms-spam-collection", base / "sms-spam-collection")
        target = base / "youtube-spam-collection"
        target.mkdir()
        for csv in (data_dir / "youtube-spam-collection").glob("*.csv"):
            if video.lower() not in csv.name.lower():
                shutil.copy(csv, target / csv.name)
        held = [e for e in everything if e.source == "youtube" and e.group == video]
    random.Random(0).shuffle(held)
    size = min(POINTS[-1], len(held) // 2)  # a small domain (one video): half labelled, half evaluated
    return base, held[:size], held[size:]


def curve(draws: int, out: Path | None) -> None:
    """The published curve: each shipped public corpus held out as the new site, several draws per k.

    The base model is trained the way `moderation train` trains (`fit_with_thresholds`) on the shipped
    corpora without the held-out one. Per draw the corpus is shuffled; its first 500 comments are the
    site's labelled traffic, the rest is never labelled and is the evaluation set. After k labels the
    site's own model is fitted on them (`fit_site_adjustment`, what the server's refit and every retrain
    fit: one site's labels alone never move the global model, see site_learning) and the evaluation set
    scored with it; the baseline (TF-IDF + logistic regression) is trained on the same k labels.
    """
    from sklearn.metrics import roc_auc_score

    from moderation.comment import Label
    from moderation.core.classifier import train_baseline
    from moderation.core.corpora import deduplicate, load_shipped
    from moderation.core.metrics import recall_at_fpr
    from moderation.core.site_model import fit_site_adjustment
    from moderation.core.training import fit_with_thresholds

    shipped = deduplicate(load_shipped())
    results: dict[str, dict[int, dict[str, list[float]]]] = {}
    for held_out in ("sms", "youtube"):
        base = [e for e in shipped if e.source != held_out]
        domain_examples = [e for e in shipped if e.source == held_out]
        started = time.perf_counter()
        model = fit_with_thresholds(base, version=f"without-{held_out}", random_state=0).model
        seconds = time.perf_counter() - started
        print(f"{held_out}: base model on {len(base)} examples in {seconds:.0f} s", file=sys.stderr)
        figures: dict[int, dict[str, list[float]]] = {k: {"auc": [], "rec": [], "bauc": [], "brec": []} for k in POINTS}
        for draw in range(draws):
            shuffled = list(domain_examples)
            random.Random(draw).shuffle(shuffled)
            traffic, evaluation = shuffled[: POINTS[-1]], shuffled[POINTS[-1] :]
            y = np.array([1 if e.label is Label.SPAM else 0 for e in evaluation])
            comments = [e.comment for e in evaluation]
            for k in POINTS:
                labelled = traffic[:k]
                served = model
                if len({e.label for e in labelled}) == 2:
                    adjustment = fit_site_adjustment(model, [e.comment for e in labelled], [e.label for e in labelled])
                    served = model.with_sites(model.version, {1: adjustment})
                ours = served.predict_proba_for_site(comments, 1)
                if len({e.label for e in labelled}) == 2:
                    theirs = train_baseline(labelled).predict_proba(comments)[:, 1]
                else:
                    theirs = np.full(len(evaluation), 0.5)
                cell = figures[k]
                cell["auc"].append(roc_auc_score(y, ours))
                cell["rec"].append(recall_at_fpr(y, ours))
                cell["bauc"].append(roc_auc_score(y, theirs))
                cell["brec"].append(recall_at_fpr(y, theirs) if k else 0.0)
            print(f"  draw {draw}: " + ", ".join(f"k={k} {figures[k]['auc'][-1]:.3f}" for k in POINTS), file=sys.stderr)
        results[held_out] = figures

    def show(values: list[float]) -> str:
        return f"{np.mean(values):.3f} ± {np.std(values):.3f}"

    print(f"Each public corpus held out of the base model as the new site; {draws} random draws (mean ± sd).\n")
    print("| held out | site labels | ours ROC AUC | baseline ROC AUC | ours recall@1%FPR | baseline recall@1%FPR |")
    print("|---|---|---|---|---|---|")
    for held_out, figures in results.items():
        for k in POINTS:
            f = figures[k]
            print(f"| {held_out} | {k} | {show(f['auc'])} | {show(f['bauc'])} | {show(f['rec'])} | {show(f['brec'])} |")
    if out is not None:
        plot_curve(results, out)


def plot_curve(results: dict[str, dict[int, dict[str, list[float]]]], out: Path) -> None:
    """ROC AUC and recall at 1% FPR against site labels, ours and the baseline, one column per held-out corpus."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(results), figsize=(5 * len(results), 7), squeeze=False)
    for col, (held_out, figures) in enumerate(results.items()):
        for row, (mine, theirs, title) in enumerate((("auc", "bauc", "ROC AUC"), ("rec", "brec", "recall at 1% FPR"))):
            ax = axes[row][col]
            for key, name in ((mine, "ours (site model)"), (theirs, "TF-IDF + LR on the same labels")):
                means = [float(np.mean(figures[k][key])) for k in POINTS]
                spread = [float(np.std(figures[k][key])) for k in POINTS]
                ax.errorbar(POINTS, means, yerr=spread, marker="o", capsize=3, label=name)
            ax.set_title(f"{held_out} held out: {title}")
            ax.set_xlabel("site labels")
            ax.set_xticks(POINTS)
            ax.grid(alpha=0.3)
            if row == 0 and col == 0:
                ax.legend(loc="lower right")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    print(f"\n![Adaptation curve]({out.name})", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="Folder of the public corpora (the API protocol).")
    parser.add_argument("--domain", default="sms", help="sms, or youtube:<video> (e.g. youtube:Shakira).")
    parser.add_argument("--curve", action="store_true", help="The published curve: shipped corpora, several draws.")
    parser.add_argument("--draws", type=int, default=5, help="Random draws per point of the curve.")
    parser.add_argument("--plot", type=Path, help="With --curve: write the plot (PNG) here.")
    args = parser.parse_args()
    if args.curve:
        curve(args.draws, args.plot)
        return
    if args.data is None:
        parser.error("--data is required without --curve")

    from sklearn.metrics import roc_auc_score

    from benchmarks.live_server import in_process
    from moderation.comment import Label
    from moderation.core.classifier import train_baseline
    from moderation.core.metrics import recall_at_fpr
    from moderation.core.model_store import load_model
    from moderation.learning.retrain import RetrainOptions, retrain
    from moderation.store import registry

    with tempfile.TemporaryDirectory(prefix="bench-adapt-") as folder:
        work = Path(folder)
        corpora, traffic, evaluation = split_domain(args.data, args.domain, work)
        points = tuple(p for p in POINTS if p <= len(traffic))
        y_eval = np.array([1 if e.label is Label.SPAM else 0 for e in evaluation])
        print(
            f"domain {args.domain}: {len(traffic)} labelled through the API, {len(evaluation)} evaluated "
            f"({int(y_eval.sum())} spam)",
            file=sys.stderr,
        )
        model_dir = work / "models"
        with in_process(work, model_dir, "new domain") as running:
            client, headers, state, site = running.client, running.headers, running.state, running.site
            options = RetrainOptions(force=True, holdout=0)

            rows = []
            fed = 0
            for point in points:
                while fed < point:
                    example = traffic[fed]
                    comment = example.comment
                    body = {"content": comment.content}
                    if comment.author_name:
                        body["author_name"] = comment.author_name
                    checked = client.post("/api/v1/comments/check", json=body, headers=headers).get_json()
                    label = example.label.value
                    answer = client.post(
                        f"/api/v1/comments/{checked['id']}/feedback", json={"label": label}, headers=headers
                    )
                    assert answer.status_code == 200, answer.get_json()
                    fed += 1
                started = time.perf_counter()
                result = retrain(state.engine, model_dir, corpora, options)
                seconds = time.perf_counter() - started
                with state.sessions() as session:
                    model = load_model(model_dir, registry.champion(session).version)
                ours = model.predict_proba_for_site([e.comment for e in evaluation], site.id)
                labelled = traffic[:point]
                if len({e.label for e in labelled}) == 2 and min(sum(e.label is Label.SPAM for e in labelled), 2) == 2:
                    baseline_model = train_baseline(labelled)
                    theirs = baseline_model.predict_proba([e.comment for e in evaluation])[:, 1]
                else:
                    theirs = np.full(len(evaluation), 0.5)
                rows.append(
                    (
                        point,
                        roc_auc_score(y_eval, ours),
                        recall_at_fpr(y_eval, ours),
                        roc_auc_score(y_eval, theirs),
                        recall_at_fpr(y_eval, theirs) if point else 0.0,
                        seconds,
                        result.training.get("sites_with_corrections", 0),
                    )
                )
                print(f"  {point} labels: retrain {seconds:.0f} s", file=sys.stderr)

    print(f"Domain held out of the base model: {args.domain}; evaluated on {len(evaluation)} unseen messages.\n")
    print("| labels | ours ROC AUC | ours recall@1%FPR | TF-IDF+LR ROC AUC | TF-IDF+LR recall@1%FPR | retrain |")
    print("|---|---|---|---|---|---|")
    for point, auc, rec, bauc, brec, seconds, _sites in rows:
        print(f"| {point} | {auc:.3f} | {rec:.3f} | {bauc:.3f} | {brec:.3f} | {seconds:.0f} s |")


if __name__ == "__main__":
    main()
