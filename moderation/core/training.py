"""Train a model on every corpus the package ships plus whatever a folder holds, choose its thresholds
honestly, and save it with its manifest.

`fit_with_thresholds` is the one trainer `moderation train` and `moderation retrain` share: the model's
calibration folds (grouped: a YouTube video, a kind of site of the written corpus stays in one fold)
give each example an out-of-fold log-odds; calibrated, those are the held-out scores the thresholds are
read off (see `thresholds`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import expit

from moderation.comment import LabelledComment
from moderation.core.classifier import SpamModel, fit_model
from moderation.core.corpora import counts, deduplicate, fingerprint, load_folder, load_shipped
from moderation.core.folds import DEFAULT_FOLDS, grouped_folds, labels
from moderation.core.metrics import binary_metrics
from moderation.core.model_store import Manifest, artifact_path, new_version, save_model
from moderation.core.thresholds import choose_thresholds, held_out_thresholds

Progress = Callable[[str], None]


def no_progress(_: str) -> None:
    """A progress callback that says nothing."""


def build_training_set(data_dir: Path | None) -> list[LabelledComment]:
    """Every corpus the package ships plus every corpus in `data_dir` (when given), deduplicated by
    normalised text (a data folder holding the public corpora again adds nothing).

    Raises DataError when `data_dir` does not exist or holds no corpus.
    """
    examples = load_shipped()
    if data_dir is not None:
        examples += load_folder(Path(data_dir))
    return deduplicate(examples)



def out_of_fold_scores(
    examples: Sequence[LabelledComment],
    fit: Callable[[Sequence[LabelledComment]], Any],
    predict: Callable[[Any, Sequence[LabelledComment]], np.ndarray],
    *,
    folds: int = DEFAULT_FOLDS,
    random_state: int = 0,
    progress: Progress = no_progress,
    name: str = "model",
) -> np.ndarray:
    """Each example's spam score from a model fitted on the folds that do not contain it."""
    scores = np.full(len(examples), np.nan)
    splits = grouped_folds(examples, folds, random_state)
    for number, (train, test) in enumerate(splits, start=1):
        started = time.perf_counter()
        fitted = fit([examples[i] for i in train])
        scores[test] = predict(fitted, [examples[i] for i in test])
        seconds = time.perf_counter() - started
        progress(f"  {name} fold {number}/{len(splits)}: {len(train)} train, {len(test)} held out ({seconds:.1f} s)")
    return scores


def calibrated(model: Any, decision_values: np.ndarray) -> np.ndarray:
    """Map decision values to probabilities with `model`'s Platt calibration (slope, intercept)."""
    slope, intercept = model.calibration
    return np.asarray(expit(slope * np.asarray(decision_values, dtype=float) + intercept), dtype=float)



def model_probabilities(model: Any, examples: Sequence[LabelledComment]) -> np.ndarray:
    """Spam probabilities from a SpamModel for labelled examples."""
    return np.asarray(model.predict_proba([e.comment for e in examples]), dtype=float)


def free_version(model_dir: Path, version: str) -> str:
    """`version`, or `version-2`, `-3`… when a model by that name already exists (two trains in a second)."""
    candidate, suffix = version, 2
    while artifact_path(model_dir, candidate).exists():
        candidate, suffix = f"{version}-{suffix}", suffix + 1
    return candidate


@dataclass(frozen=True)
class Trained:
    """A model with thresholds chosen out of fold, and the out-of-fold metrics its manifest records."""

    model: SpamModel
    metrics: dict[str, Any]


def fit_with_thresholds(
    examples: Sequence[LabelledComment],
    *,
    version: str,
    random_state: int = 0,
    per_source: bool = True,
    progress: Progress = no_progress,
) -> Trained:
    """Train on `examples` (already deduplicated), then choose thresholds on grouped out-of-fold scores.

    What `moderation train` and `moderation retrain` both run: one trainer, one threshold rule. The
    metrics are the out-of-fold ones at those thresholds, pooled and per source.
    """
    started = time.perf_counter()
    progress(f"training the model on {len(examples)} examples (grouped folds for calibration and thresholds, then all)")
    fitted = fit_model(examples, version=version, random_state=random_state, progress=progress)
    model = fitted.model
    fit_seconds = time.perf_counter() - started
    oof = calibrated(model, fitted.out_of_fold)
    y = labels(examples)
    model.thresholds = held_out_thresholds(examples, oof) if per_source else choose_thresholds(oof[y == 0])
    t = model.thresholds
    progress(f"  thresholds: hold {t.hold:.3f}, spam {t.spam:.3f}, discard {t.discard:.3f}")

    sources = np.array([e.source for e in examples])
    metrics: dict[str, Any] = {
        "protocol": "grouped out-of-fold predictions on the training data (the calibration folds) "
        "(includes the starter corpus: a sanity check, not a benchmark; see `moderation evaluate`)",
        "pooled": binary_metrics(y, oof, t),
        "by_source": {s: binary_metrics(y[sources == s], oof[sources == s], t) for s in sorted(set(sources))},
        "fit_seconds": round(fit_seconds, 2),
        "train_seconds": round(time.perf_counter() - started, 2),
    }
    return Trained(model, metrics)


def train_and_save(
    model_dir: Path,
    data_dir: Path | None = None,
    *,
    examples: Sequence[LabelledComment] | None = None,
    random_state: int = 0,
    per_source: bool = True,
    make_current: bool = True,
    progress: Progress = no_progress,
) -> Manifest:
    """Train on the starter corpus plus `data_dir`'s corpora, choose thresholds out of fold, save, mark current.

    `examples`, when given, replaces the corpora (they are deduplicated; `data_dir` is then only recorded).

    The manifest records the data's fingerprint and counts, the thresholds, and out-of-fold metrics
    (pooled and per source) at those thresholds. Raises DataError for a missing or empty data folder.
    """
    started = time.perf_counter()
    model_dir = Path(model_dir)
    if examples is None:
        progress(f"loading corpora: starter{f' + {data_dir}' if data_dir else ''}")
        examples = build_training_set(data_dir)
    else:
        examples = deduplicate(examples)
    tally = counts(examples)
    progress(f"  {tally['total']} examples after deduplication ({tally['spam']} spam, {tally['ham']} ham)")
    data_fingerprint = fingerprint(examples)
    version = free_version(model_dir, new_version(data_fingerprint))
    trained = fit_with_thresholds(
        examples, version=version, random_state=random_state, per_source=per_source, progress=progress
    )
    metrics = {**trained.metrics, "train_seconds": round(time.perf_counter() - started, 2)}
    data = {
        "fingerprint": data_fingerprint,
        "counts": tally,
        "data_dir": str(data_dir) if data_dir is not None else None,
    }
    manifest = save_model(model_dir, trained.model, data=data, metrics=metrics, make_current=make_current)
    progress(
        f"saved {artifact_path(model_dir, version)} ({manifest.size_bytes / 1e6:.1f} MB) "
        f"in {metrics['train_seconds']:.1f} s"
    )
    return manifest
