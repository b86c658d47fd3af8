"""Measures of a spam score against labels: counts, ROC AUC, recall at 1% FPR, and the decision bands."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

TARGET_FPR = 0.01


def _safe_div(num: float, den: float) -> float:
    return float(num / den) if den else 0.0


def _confusion(y: np.ndarray, predicted: np.ndarray) -> tuple[int, int, int, int]:
    tp = int(np.sum((predicted == 1) & (y == 1)))
    fp = int(np.sum((predicted == 1) & (y == 0)))
    fn = int(np.sum((predicted == 0) & (y == 1)))
    tn = int(np.sum((predicted == 0) & (y == 0)))
    return tp, fp, fn, tn


def _mcc(tp: int, fp: int, fn: int, tn: int) -> float:
    den = math.sqrt(float(tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return (tp * tn - fp * fn) / den if den else 0.0


def recall_at_fpr(y: np.ndarray, scores: np.ndarray, fpr: float = TARGET_FPR) -> float:
    """The highest share of spam caught by any threshold that blocks at most `fpr` of the ham."""
    if y.min() == y.max():
        return float("nan")
    fprs, tprs, _ = roc_curve(y, scores)
    return float(tprs[fprs <= fpr + 1e-12].max())


def binary_metrics(y: np.ndarray, scores: np.ndarray, thresholds: Any | None = None) -> dict[str, Any]:
    """Counts, ROC AUC, recall at 1% FPR, P/R/F1/MCC/FPR at p ≥ 0.5, and the bands at `thresholds`."""
    y = np.asarray(y).astype(int)
    scores = np.asarray(scores, dtype=float)
    spam, ham = int(y.sum()), int(len(y) - y.sum())
    both = spam > 0 and ham > 0
    tp, fp, fn, tn = _confusion(y, (scores >= 0.5).astype(int))
    precision, recall = _safe_div(tp, tp + fp), _safe_div(tp, tp + fn)
    out: dict[str, Any] = {
        "n": len(y),
        "spam": spam,
        "ham": ham,
        "roc_auc": float(roc_auc_score(y, scores)) if both else float("nan"),
        "recall_at_1pct_fpr": recall_at_fpr(y, scores) if both else float("nan"),
        "precision": precision,
        "recall": recall,
        "f1": _safe_div(2 * precision * recall, precision + recall),
        "mcc": _mcc(tp, fp, fn, tn),
        "fpr": _safe_div(fp, fp + tn),
    }
    if thresholds is not None:
        is_spam, is_ham = y == 1, y == 0
        tp, fp, fn, tn = _confusion(y, (scores >= thresholds.spam).astype(int))
        out.update(
            {
                "threshold_spam": float(thresholds.spam),
                "ham_blocked": _safe_div(fp, ham),
                "spam_caught": _safe_div(tp, spam),
                "mcc_at_spam": _mcc(tp, fp, fn, tn),
                "ham_held_or_blocked": _safe_div(int(np.sum(scores[is_ham] >= thresholds.hold)), ham),
                "ham_discarded": _safe_div(int(np.sum(scores[is_ham] >= thresholds.discard)), ham),
                "spam_discarded": _safe_div(int(np.sum(scores[is_spam] >= thresholds.discard)), spam),
            }
        )
    return out
