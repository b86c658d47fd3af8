"""A site's own model: a correction of the global model's log-odds learned from that site's labels only.

    fit_site_adjustment(model, comments, labels) -> SiteAdjustment
    SiteAdjustment.decisions(global_log_odds, indptr, columns, values) -> the site's log-odds

A site's model blends two parts over the feature columns its labelled comments use: an anchored
correction (a sparse weight vector plus a bias added to a share 0..1 of the global log-odds) and the
site's own logistic regression over those columns, with the blend weights chosen by cross-validation
within the site's labels. It is applied only to that site's comments, so one site cannot flip another's
results. Why both parts: where the global model already serves a site well the blend keeps it; where a
site is unlike the corpora its own model takes over (docs/experiments.md: per-site models).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.optimize import minimize
from scipy.special import expit
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import normalize as l2_normalize
from threadpoolctl import threadpool_limits

from moderation.comment import Comment, Label
from moderation.errors import DataError

# Penalties of the anchored correction: L2 on the weights, on the bias, and the pull of the global
# scale towards 1 (docs/experiments.md: per-site models — all values tried were within noise).
SITE_L2 = 0.003
SITE_BIAS_L2 = 0.5
SITE_SCALE_L2 = 1.0
# Cross-validation within a site's labels: folds; the own model's candidate C (a wide grid); the blend's L2.
SITE_FOLDS = 5
SITE_OWN_CS = (0.3, 1.0, 3.0, 10.0, 30.0)
SITE_BLEND_L2 = 1.0
# Only a site's most recent labels are cross-validated (the final fits use them all): it bounds the cost.
SITE_CV_LABELS = 500
# Newton-CG tolerance: looser stops far from the optimum, tighter costs as much.
SITE_XTOL = 1e-6


@dataclass(frozen=True)
class SiteAdjustment:
    """A site's own model, stacked on the global log-odds; applied only to that site's comments.

    Two parts over the feature columns the site's labelled comments use (`indices`):

    - the *anchored* correction: scale·global log-odds + x·weights + bias (the global model, corrected);
    - the site's *own* model, fitted from scratch on its labels: x'·own_weights + own_bias, where x' is
      the comment's values in those columns, l2-normalised over them.

    The site's log-odds are blend[0]·anchored + blend[1]·own + blend[2]. blend = (1, 0, 0) is the
    anchored correction alone (too few labels of one class to cross-validate).
    """

    indices: np.ndarray  # sorted int32 column numbers
    weights: np.ndarray  # float32, one per index: the anchored correction
    bias: float
    n_labels: int
    spam: int = 0
    ham: int = 0
    scale: float = 1.0  # how much of the global log-odds the anchored correction keeps
    own_weights: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))  # one per index
    own_bias: float = 0.0
    blend: tuple[float, float, float] = (1.0, 0.0, 0.0)
    own_c: float = 0.0  # the own model's C picked by cross-validation (0: no own model)

    def decisions(
        self, global_decision: np.ndarray, indptr: np.ndarray, columns: np.ndarray, values: np.ndarray
    ) -> np.ndarray:
        """The site's log-odds for each row (CSR arrays `indptr`, `columns`, `values`) given its global log-odds."""
        anchored = np.full(len(indptr) - 1, self.bias, dtype=np.float64)
        own = np.full(len(indptr) - 1, self.own_bias, dtype=np.float64)
        has_own = self.own_weights.size == self.indices.size and self.indices.size > 0
        for row in range(len(indptr) - 1):
            if self.indices.size == 0:
                break
            row_columns = columns[indptr[row] : indptr[row + 1]]
            positions = np.searchsorted(self.indices, row_columns)
            positions[positions >= self.indices.size] = 0
            hit = self.indices[positions] == row_columns
            row_values, where = values[indptr[row] : indptr[row + 1]][hit], positions[hit]
            anchored[row] += float(np.dot(row_values, self.weights[where]))
            norm = float(np.sqrt(np.dot(row_values, row_values)))
            if has_own and norm > 0:
                own[row] += float(np.dot(row_values, self.own_weights[where])) / norm
        a, b, c = self.blend
        return np.asarray(a * (self.scale * np.asarray(global_decision) + anchored) + b * own + c, dtype=np.float64)


def fit_site_adjustment(
    model: Any,
    comments: Sequence[Comment],
    labels: Sequence[Label],
    weights: Sequence[float] | None = None,
) -> SiteAdjustment:
    """Fit a site's own model on its labelled comments (most recent first), stacked on `model`'s log-odds.

    1. The anchored correction (`_fit_anchored`) and the own model (logistic regression on the site's
       columns, l2-normalised) are fitted on stratified folds of the first `SITE_CV_LABELS` labels; their
       out-of-fold log-odds pick the own model's C among `SITE_OWN_CS` and fit the blend (`_fit_blend`:
       non-negative weights, so neither part can turn the other's evidence upside down).
    2. Both parts are refitted on every label. With fewer than 2 labels of either class there is
       nothing to cross-validate: the anchored correction alone.

    `model` is a fitted SpamModel. Raises DataError without any comment.
    """
    if not comments:
        raise DataError("expected the site's labelled comments, found none")
    # One BLAS thread: the solvers make thousands of small vector products, where waking a thread pool
    # for each costs more than the product; a background refit should not take a server's cores either.
    with threadpool_limits(limits=1, user_api="blas"):
        return _fit(model, comments, labels, weights)


def _fit(
    model: Any, comments: Sequence[Comment], labels: Sequence[Label], weights: Sequence[float] | None
) -> SiteAdjustment:
    matrix = model.features.transform(comments).tocsr()
    offset = np.asarray(matrix @ model.coefficients + model.intercept, dtype=np.float64)
    y = np.array([1.0 if label is Label.SPAM else 0.0 for label in labels])
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=np.float64)
    columns = np.unique(matrix.indices).astype(np.int32)
    local = matrix[:, columns].tocsr()
    penalties = (SITE_L2, SITE_BIAS_L2, SITE_SCALE_L2)
    params = _fit_anchored(local, offset, y, w, penalties)
    spam = int(y.sum())
    anchored = SiteAdjustment(
        indices=columns,
        weights=params[:-2].astype(np.float32),
        bias=_finite(params[-2], 0.0),
        n_labels=len(y),
        spam=spam,
        ham=len(y) - spam,
        scale=_finite(min(1.0, max(0.0, float(params[-1]))), 1.0),
    )
    cv = slice(0, min(len(y), SITE_CV_LABELS))
    k = min(SITE_FOLDS, int(y[cv].sum()), int(len(y[cv]) - y[cv].sum()))
    if k < 2:
        return anchored

    normalised = l2_normalize(local, copy=True)
    used = np.unique(local[cv].indices)  # fewer columns than the whole history: cheaper fits, same rows
    cv_local, cv_normalised = local[cv][:, used].tocsr(), normalised[cv][:, used].tocsr()
    cv_offset, cv_y, cv_w = offset[cv], y[cv], w[cv]
    oof_anchored = np.zeros(len(cv_y))
    oof_own = {c: np.zeros(len(cv_y)) for c in SITE_OWN_CS}
    for train, test in StratifiedKFold(k, shuffle=True, random_state=0).split(np.zeros(len(cv_y)), cv_y):
        # Started cold, not from the fit on every label: that start has seen this fold's held-out labels.
        fold = _fit_anchored(cv_local[train], cv_offset[train], cv_y[train], cv_w[train], penalties)
        scale = min(1.0, max(0.0, fold[-1]))
        oof_anchored[test] = scale * cv_offset[test] + cv_local[test] @ fold[:-2] + fold[-2]
        for c in SITE_OWN_CS:
            own = _fit_own(cv_normalised[train], cv_y[train], cv_w[train], c)
            oof_own[c][test] = cv_normalised[test] @ own[:-1] + own[-1]
    blends = {c: _fit_blend(oof_anchored, oof_own[c], cv_y, cv_w) for c in SITE_OWN_CS}
    best = min(SITE_OWN_CS, key=lambda c: blends[c][1])
    own = _fit_own(normalised, y, w, best)
    return SiteAdjustment(
        indices=anchored.indices,
        weights=anchored.weights,
        bias=anchored.bias,
        n_labels=anchored.n_labels,
        spam=anchored.spam,
        ham=anchored.ham,
        scale=anchored.scale,
        own_weights=own[:-1].astype(np.float32),
        own_bias=_finite(own[-1], 0.0),
        blend=blends[best][0],
        own_c=float(best),
    )


def _finite(value: float, default: float) -> float:
    return float(value) if math.isfinite(value) else default


def _fit_anchored(
    local: sp.csr_matrix,
    offset: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    penalties: tuple[float, float, float],
) -> np.ndarray:
    """Parameters [weights…, bias, scale] of the anchored correction, by Newton-CG.

    Minimises the weighted logistic loss of (scale·offset + local·weights + bias) plus
    l2/2·|weights|² + bias_l2/2·bias² + scale_l2/2·(scale − 1)²; the caller clips scale to [0, 1]
    (a site may trust the global model less where it serves it badly, never more).
    """
    l2, bias_l2, scale_l2 = penalties
    local_t = local.T.tocsr()  # transposed products in CSR: faster than through the CSC view

    def loss(params: np.ndarray) -> tuple[float, np.ndarray]:
        beta, bias, scale = params[:-2], params[-2], params[-1]
        z = scale * offset + local @ beta + bias
        p = expit(z)
        value = float(np.sum(w * (np.logaddexp(0.0, z) - y * z)))  # log(1 + e^z) - y z, computed stably
        value += 0.5 * l2 * float(beta @ beta) + 0.5 * bias_l2 * bias * bias + 0.5 * scale_l2 * (scale - 1.0) ** 2
        residual = w * (p - y)
        gradient = np.concatenate(
            [
                local_t @ residual + l2 * beta,
                [residual.sum() + bias_l2 * bias],
                [residual @ offset + scale_l2 * (scale - 1.0)],
            ]
        )
        return value, gradient

    def hessp(params: np.ndarray, vector: np.ndarray) -> np.ndarray:
        z = params[-1] * offset + local @ params[:-2] + params[-2]
        p = expit(z)
        d = w * p * (1.0 - p) * np.asarray(local @ vector[:-2] + vector[-2] + vector[-1] * offset)
        return np.concatenate(
            [local_t @ d + l2 * vector[:-2], [d.sum() + bias_l2 * vector[-2]], [d @ offset + scale_l2 * vector[-1]]]
        )

    start = np.zeros(local.shape[1] + 2)
    start[-1] = 1.0
    # Newton-CG with exact Hessian-vector products: ~10 outer steps where L-BFGS needs hundreds.
    result = minimize(
        loss, start, jac=True, hessp=hessp, method="Newton-CG", options={"maxiter": 50, "xtol": SITE_XTOL}
    )
    return np.asarray(result.x, dtype=np.float64)


def _fit_own(normalised: sp.csr_matrix, y: np.ndarray, w: np.ndarray, c: float) -> np.ndarray:
    """[weights…, bias] of a logistic regression with inverse L2 strength `c` on the site's columns alone."""
    if len(set(y.tolist())) < 2:  # a fold with one class: the own model can only say the base rate
        rate = float(np.clip(np.average(y, weights=w), 1e-3, 1 - 1e-3))
        return np.concatenate([np.zeros(normalised.shape[1]), [math.log(rate / (1 - rate))]])
    fitted = LogisticRegression(C=c, solver="liblinear", dual=True, max_iter=1000).fit(normalised, y, sample_weight=w)
    return np.concatenate([fitted.coef_.ravel(), fitted.intercept_])


def _fit_blend(
    anchored: np.ndarray, own: np.ndarray, y: np.ndarray, w: np.ndarray
) -> tuple[tuple[float, float, float], float]:
    """Blend (a, b, c) of out-of-fold log-odds: weighted logistic loss of a·anchored + b·own + c, a, b ≥ 0.

    Returns the blend and its loss (without the penalty), the figure own models are compared on.
    """
    design = np.column_stack([anchored, own, np.ones(len(y))])

    def loss(params: np.ndarray) -> tuple[float, np.ndarray]:
        z = design @ params
        p = expit(z)
        value = float(np.sum(w * (np.logaddexp(0.0, z) - y * z))) + 0.5 * SITE_BLEND_L2 * float(params[:2] @ params[:2])
        gradient = design.T @ (w * (p - y))
        gradient[:2] += SITE_BLEND_L2 * params[:2]
        return value, gradient

    bounds = [(0.0, None), (0.0, None), (None, None)]
    result = minimize(loss, np.array([1.0, 0.0, 0.0]), jac=True, method="L-BFGS-B", bounds=bounds)
    a, b, c = (float(v) for v in result.x)
    z = design @ result.x
    return (a, b, c), float(np.sum(w * (np.logaddexp(0.0, z) - y * z)))
