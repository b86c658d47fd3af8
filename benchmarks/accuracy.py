"""Accuracy side by side: this project, the plain baseline and the peer filters on the same splits.

Splits come from `moderation.core.evaluation.make_splits` (deduplicated corpora, no test text in training,
leave-one-video-out on YouTube, SMS as a separate domain). Every method is trained from scratch on the
split's training side and nothing else, and every method's operating points are chosen the same way,
from its own out-of-fold scores on that training side (grouped inner folds,
`moderation.core.training.out_of_fold_scores`), never from the test side:

- the auto-spam threshold (`moderation.core.thresholds.held_out_thresholds`: ≤ 1% of held-out ham at or above
  it, also when each training video in turn is left out of the choice and judged by it), at which
  "ham blocked" and "spam caught" are measured on the test side;
- the review band (`review_band`): the narrowest score interval [low, high) such that automatic decisions
  outside it (approve below, spam at or above) are at least 99.5% correct on the training side's
  out-of-fold scores. Applied to the test side, the share of comments inside it is the *review
  workload*: what a human still has to look at.

Metrics (`moderation.core.metrics.binary_metrics`): MCC and F1 at p ≥ 0.5, ROC AUC, recall at 1% FPR
(read off the test ROC curve), ham blocked at the auto-spam threshold.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from moderation.comment import LabelledComment
from moderation.core.evaluation import Split, baseline_probabilities
from moderation.core.folds import labels
from moderation.core.metrics import binary_metrics
from moderation.core.thresholds import held_out_thresholds
from moderation.core.training import calibrated, model_probabilities, out_of_fold_scores

from .peers import PEERS, Peer

METHODS = ("model", "baseline", "bogofilter", "spamassassin")
METHOD_TITLES = {
    "model": "this project",
    "baseline": "TF-IDF + LR baseline",
    "bogofilter": "bogofilter",
    "spamassassin": "SpamAssassin Bayes",
}
REQUIRED_ACCURACY = 0.995
Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    """Say nothing."""


# --- the review band -----------------------------------------------------------------------------------


def review_band(y: np.ndarray, scores: np.ndarray, accuracy: float = REQUIRED_ACCURACY) -> tuple[float, float]:
    """The narrowest [low, high) such that approving below `low` and blocking at or above `high` is ≥ `accuracy` right.

    Candidate cuts are the distinct score values (plus one just above the largest), so every possible
    division of the sorted scores is tried: O(m²) in the number m of distinct scores, vectorised per
    lower cut. Among bands of equal size the one with the fewest automatic errors wins. When no band
    short of everything works, returns (lowest, just above highest): every comment goes to review.
    """
    y = np.asarray(y).astype(int)
    scores = np.asarray(scores, dtype=float)
    values, inverse = np.unique(scores, return_inverse=True)
    m = len(values)
    spam_at = np.bincount(inverse, weights=y, minlength=m)
    count_at = np.bincount(inverse, minlength=m).astype(float)
    # below[k]: comments whose score is one of the k lowest distinct values.
    spam_below = np.concatenate([[0.0], np.cumsum(spam_at)])
    all_below = np.concatenate([[0.0], np.cumsum(count_at)])
    ham_below = all_below - spam_below
    n, ham_total = float(len(y)), float(len(y) - y.sum())
    cuts = np.concatenate([values, [np.nextafter(values[-1], np.inf)]]) if m else np.array([0.0, 1.0])
    best: tuple[float, float, int, int] = (math.inf, math.inf, 0, m)
    for low in range(m + 1):
        high = np.arange(low, m + 1)
        band = all_below[high] - all_below[low]
        errors = spam_below[low] + (ham_total - ham_below[high])
        decided = n - band
        ok = errors <= (1.0 - accuracy) * decided + 1e-9
        ok &= decided > 0
        if not ok.any():
            continue
        candidates = np.flatnonzero(ok)
        pick = candidates[np.lexsort((errors[candidates], band[candidates]))[0]]
        key = (float(band[pick]), float(errors[pick]))
        if key < best[:2]:
            best = (*key, low, int(high[pick]))
    _, _, low_cut, high_cut = best
    return float(cuts[low_cut]), float(cuts[high_cut])


def review_workload(y: np.ndarray, scores: np.ndarray, band: tuple[float, float]) -> dict[str, float]:
    """Share of comments inside `band` (left for a human) and the accuracy of the automatic decisions outside it."""
    y = np.asarray(y).astype(int)
    scores = np.asarray(scores, dtype=float)
    low, high = band
    review = (scores >= low) & (scores < high)
    approve, block = scores < low, scores >= high
    errors = int(np.sum(y[approve] == 1) + np.sum(y[block] == 0))
    decided = int(approve.sum() + block.sum())
    return {
        "review_share": float(review.mean()) if len(y) else float("nan"),
        "auto_accuracy": 1.0 - errors / decided if decided else float("nan"),
        "auto_errors": float(errors),
        "band_low": low,
        "band_high": high,
    }


# --- fitting each method ---------------------------------------------------------------------------------


@dataclass
class MethodRun:
    """One method's scores, operating points and metrics on one split."""

    method: str
    test_scores: np.ndarray
    oof_scores: np.ndarray
    metrics: dict[str, Any]
    fit_seconds: float
    seconds: float
    notes: list[str] = field(default_factory=list)


def _fit_model(train: list[LabelledComment], test: list[LabelledComment], folds: int, seed: int) -> tuple:
    """The model as `moderation train` fits it: out-of-fold scores from its own calibration folds."""
    from moderation.core.classifier import fit_model

    started = time.perf_counter()
    fitted = fit_model(train, random_state=seed)
    fit_seconds = time.perf_counter() - started
    return calibrated(fitted.model, fitted.out_of_fold), model_probabilities(fitted.model, test), fit_seconds, []


def _fit_baseline(train: list[LabelledComment], test: list[LabelledComment], folds: int, seed: int) -> tuple:
    from moderation.core.classifier import train_baseline

    oof = out_of_fold_scores(train, train_baseline, baseline_probabilities, folds=folds, random_state=seed)
    started = time.perf_counter()
    pipeline = train_baseline(train)
    fit_seconds = time.perf_counter() - started
    return oof, baseline_probabilities(pipeline, test), fit_seconds, []


def _peer_scores(peer: Peer, examples: Sequence[LabelledComment]) -> np.ndarray:
    """Scores with SpamAssassin's "no Bayes verdict" (too few known tokens) mapped to the neutral 0.5."""
    scores = peer.scores([e.comment for e in examples])
    return np.where(np.isnan(scores), 0.5, scores)


def _fit_peer(name: str, work_dir: Path) -> Callable[..., tuple]:
    cls = PEERS[name]

    def fit(train: list[LabelledComment], test: list[LabelledComment], folds: int, seed: int) -> tuple:
        def fold_fit(examples: Sequence[LabelledComment]) -> Peer:
            return cls(work_dir).fit(examples)

        def fold_predict(peer: Peer, examples: Sequence[LabelledComment]) -> np.ndarray:
            try:
                return _peer_scores(peer, examples)
            finally:
                peer.close()

        oof = out_of_fold_scores(train, fold_fit, fold_predict, folds=folds, random_state=seed)
        peer = cls(work_dir).fit(train)
        try:
            raw = peer.scores([e.comment for e in test])
        finally:
            peer.close()
        notes = []
        if np.isnan(raw).any():
            notes.append(f"no Bayes verdict for {np.isnan(raw).mean():.1%} of test comments (scored 0.5)")
        return oof, np.where(np.isnan(raw), 0.5, raw), peer.fit_seconds, notes

    return fit


def run_method(method: str, split: Split, *, folds: int = 3, seed: int = 0, work_dir: Path | None = None) -> MethodRun:
    """Train `method` on the split's training side, choose its operating points out of fold, score the test side."""
    train, test = list(split.train), list(split.test)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-peers-", dir=work_dir) as scratch:
        fitters: dict[str, Callable[..., tuple]] = {"model": _fit_model, "baseline": _fit_baseline}
        fitter = fitters.get(method) or _fit_peer(method, Path(scratch))
        oof, scores, fit_seconds, notes = fitter(train, test, folds, seed)
    y_train, y_test = labels(train).astype(int), labels(test).astype(int)
    thresholds = held_out_thresholds(train, oof)
    metrics = binary_metrics(y_test, scores, thresholds)
    metrics.update(review_workload(y_test, scores, review_band(y_train, oof)))
    return MethodRun(method, scores, oof, metrics, fit_seconds, time.perf_counter() - started, notes)


# --- a whole comparison ------------------------------------------------------------------------------------


@dataclass
class SplitRuns:
    """Every method's run on one split."""

    protocol: str
    name: str
    n_train: int
    y: np.ndarray
    runs: dict[str, MethodRun] = field(default_factory=dict)


def compare(
    splits: Sequence[Split],
    methods: Sequence[str] = METHODS,
    *,
    folds: int = 3,
    seed: int = 0,
    method_splits: dict[str, int] | None = None,
    progress: Progress = _quiet,
) -> list[SplitRuns]:
    """Run every method on every split (a method listed in `method_splits` only on that protocol's first N splits).

    Methods whose tools are missing (`Peer.missing()`) are skipped by the caller, not here.
    """
    limits = method_splits or {}
    seen: dict[tuple[str, str], int] = {}
    out = []
    for split in splits:
        result = SplitRuns(split.protocol, split.name, len(split.train), labels(split.test).astype(int))
        for method in methods:
            key = (split.protocol, method)
            seen[key] = seen.get(key, 0) + 1
            if method in limits and seen[key] > limits[method]:
                continue
            run = run_method(method, split, folds=folds, seed=seed)
            result.runs[method] = run
            m = run.metrics
            progress(
                f"  {split.protocol} {split.name} {method}: MCC {m['mcc']:.3f} AUC {m['roc_auc']:.3f} "
                f"ham blocked {m['ham_blocked']:.1%} review {m['review_share']:.1%} ({run.seconds:.0f} s)"
            )
        out.append(result)
    return out


def mean_metrics(results: Sequence[SplitRuns], protocol: str, method: str) -> dict[str, float]:
    """Macro average of each numeric metric over the protocol's splits where `method` ran."""
    runs = [r.runs[method].metrics for r in results if r.protocol == protocol and method in r.runs]
    if not runs:
        return {}
    keys = [k for k, v in runs[0].items() if isinstance(v, float | int)]
    with np.errstate(all="ignore"):
        means = {k: float(np.nanmean([run[k] for run in runs])) for k in keys}
    means["splits"] = float(len(runs))
    return means
