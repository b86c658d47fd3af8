"""The spam model: a linear classifier over `CommentFeatures`, Platt-calibrated, with clues.

    fit_model(examples)      -> Fitted      features + logistic regression + calibration (+ out-of-fold log-odds)
    train_baseline(examples) -> Pipeline    plain TF-IDF + logistic regression, for comparison
    SpamModel.score(comment) -> Score       calibrated spam probability and the clues behind it

The model is linear on purpose: a clue is exactly one feature's contribution to the log-odds
(coefficient × feature value, times the calibration slope), so the reasons shown to a moderator are
the reasons the score has, not an after-the-fact approximation.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import numpy as np
from scipy import sparse
from scipy.optimize import minimize
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from moderation.comment import Clue, Comment, Label, LabelledComment, Score
from moderation.core.features import CommentFeatures, Prepared, build_features, describe_signal, describe_term
from moderation.core.folds import split_groups
from moderation.core.site_model import SiteAdjustment
from moderation.core.thresholds import Thresholds
from moderation.errors import DataError, ModelIntegrityError

# Inverse regularisation strength of the logistic regression (docs/experiments.md: regularisation).
DEFAULT_C = 30.0
MAX_POSITIVE_CLUES = 5
MAX_NEGATIVE_CLUES = 2
MIN_POSITIVE_WEIGHT = 0.05  # log-odds; smaller contributions are noise to a moderator
MIN_NEGATIVE_WEIGHT = 0.3  # ham-side clues only when they pull the score down noticeably



# The column number `_chosen` gives a site's own correction among the clue candidates.
_SITE_CLUE = -2


class Scorer(Protocol):
    """What the service needs of a model: scores with clues, for a site or not, its thresholds and version."""

    version: str
    thresholds: Thresholds

    def score_for_site(self, comment: Comment, site_id: int | None) -> Score:
        """The calibrated spam probability of `comment` sent to `site_id` (None: no site) and its clues."""
        ...

    def predict_proba_for_site(self, comments: Sequence[Comment], site_id: int | None) -> np.ndarray:
        """Calibrated spam probabilities of comments sent to `site_id` (None: no site)."""
        ...


class SpamModel:
    """A fitted feature transformer and logistic regression plus Platt calibration, versioned, with the
    per-site corrections fitted on each site's own labels (`sites`: site id → SiteAdjustment).

    `calibration` is (slope, intercept) mapping the classifier's decision value d to the calibrated
    probability 1 / (1 + exp(-(slope * d + intercept))). A site's correction changes d for that site's
    comments only.
    """

    def __init__(
        self,
        features: CommentFeatures,
        classifier: LogisticRegression,
        calibration: tuple[float, float],
        *,
        version: str,
        thresholds: Thresholds | None = None,
        weighting: str = "none",
        sites: dict[int, SiteAdjustment] | None = None,
    ) -> None:
        self.features = features
        self.classifier = classifier
        self.calibration = calibration
        self.version = version
        self.thresholds = thresholds or Thresholds()
        self.weighting = weighting  # how training weighted the sources (`example_weights`), for refits
        self.sites = dict(sites or {})
        self._prepare_weights()

    def with_sites(self, version: str, sites: dict[int, SiteAdjustment]) -> SpamModel:
        """The same global model under another version, with `sites` as its per-site corrections."""
        return SpamModel(
            self.features,
            self.classifier,
            self.calibration,
            version=version,
            thresholds=self.thresholds,
            weighting=self.weighting,
            sites=sites,
        )

    @property
    def coefficients(self) -> np.ndarray:
        """The classifier's weight of each feature column."""
        return self._coef

    @property
    def intercept(self) -> float:
        """The classifier's intercept (uncalibrated log-odds of a comment with no features)."""
        return self._intercept

    def _prepare_weights(self) -> None:
        """Precompute what scoring needs once, so a score is a dot product plus a few lookups."""
        self._coef = np.ravel(self.classifier.coef_).astype(np.float64)
        self._intercept = float(np.ravel(self.classifier.intercept_)[0])
        self._char_start = self.features.n_words_
        self._signal_start = self.features.n_words_ + self.features.n_chars_
        self._signal_names = self.features.signal_names
        expected = self._signal_start + len(self._signal_names)
        if self._coef.size != expected:
            raise ModelIntegrityError(
                f"model {self.version}: expected {expected} classifier weights for its features, found "
                f"{self._coef.size}; retrain it with `moderation train`"
            )
        self._url_domains = self._signal_start + self._signal_names.index("url_domains")
        self._block_starts = np.array([self._char_start, self._signal_start], dtype=np.intp)
        self._word_terms: list[str] = [str(term) for term in self.features.word_terms_]  # clues read them by column

    def __getstate__(self) -> dict[str, object]:
        return {key: value for key, value in self.__dict__.items() if not key.startswith("_")}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update({"sites": {}, **state})
        self._prepare_weights()

    def decision_function(self, comments: Sequence[Comment]) -> np.ndarray:
        """Uncalibrated log-odds of each comment being spam."""
        return self._contributions(self.features.prepare_many(comments))[3]

    def predict_proba(self, comments: Sequence[Comment]) -> np.ndarray:
        """Calibrated spam probability of each comment, as a 1-D array (fastest for large batches)."""
        return self._probability(self.decision_function(comments))

    def score(self, comment: Comment) -> Score:
        """Return the calibrated spam probability of `comment` and the clues behind it (`score_many` of one
        comment, to rounding, in fewer numpy steps)."""
        doc = self.features.prepare_many([comment])[0]
        columns, values = self.features.row(doc)
        contributions = values * self._coef[columns]
        # A numpy scalar, not a one-element array: the same exp (identical on 100,000 random values, where
        # math.exp differs in the last bit on 4.5% of them), without building arrays.
        probability = float(self._probability(contributions.sum() + self._intercept))
        return Score(probability, self._clues_of(columns, contributions * self.calibration[0], doc), self.version)

    def score_for_site(self, comment: Comment, site_id: int | None) -> Score:
        """`score`, with `site_id`'s own correction when the site has one (and a clue saying so)."""
        adjustment = self.sites.get(site_id) if site_id is not None else None
        if adjustment is None:
            return self.score(comment)
        doc = self.features.prepare_many([comment])[0]
        columns, values = self.features.row(doc)
        contributions = values * self._coef[columns]
        decision = contributions.sum() + self._intercept
        indptr = np.array([0, columns.size])
        site_decision = float(adjustment.decisions(np.array([decision]), indptr, columns, values)[0])
        probability = float(self._probability(np.float64(site_decision)))
        # The site's part is what its correction changed; the global contributions keep their own clues.
        site_part = (site_decision - decision) * self.calibration[0]
        clues = self._clues_of(columns, contributions * self.calibration[0], doc, site_part)
        return Score(probability, clues, self.version)

    def predict_proba_for_site(self, comments: Sequence[Comment], site_id: int | None) -> np.ndarray:
        """`predict_proba` with `site_id`'s own correction applied to every comment (None: the global model)."""
        adjustment = self.sites.get(site_id) if site_id is not None else None
        docs = self.features.prepare_many(comments)
        if adjustment is None:
            return self._probability(self._contributions(docs)[3])
        indptr, columns, values = self.features.rows(docs)
        decisions = self._contributions(docs)[3]
        return self._probability(adjustment.decisions(decisions, indptr, columns, values))

    def score_many(self, comments: Sequence[Comment]) -> list[Score]:
        """Score several comments, each with its clues, in one pass over numpy arrays."""
        docs = self.features.prepare_many(comments)
        owners, columns, contributions, decisions = self._contributions(docs)
        probabilities = self._probability(decisions)
        clues = self._clues(owners, columns, contributions * self.calibration[0], docs)
        return [
            Score(float(probability), doc_clues, self.version)
            for probability, doc_clues in zip(probabilities, clues, strict=True)
        ]

    def _contributions(self, docs: Sequence[Prepared]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(comment of each entry, column, coefficient × value, each comment's log-odds) of prepared comments,
        from `CommentFeatures.rows` (the batch path: no scikit-learn transform, no sparse matrix)."""
        indptr, columns, values = self.features.rows(docs)
        contributions = values * self._coef[columns]
        owners = np.repeat(np.arange(len(docs)), np.diff(indptr))
        decisions = np.bincount(owners, weights=contributions, minlength=len(docs)) + self._intercept
        return owners, columns, contributions, decisions

    def _probability(self, decision: np.ndarray | np.float64) -> np.ndarray:
        slope, intercept = self.calibration
        return 1.0 / (1.0 + np.exp(-(slope * decision + intercept)))

    def _clues(
        self, owners: np.ndarray, columns: np.ndarray, weights: np.ndarray, docs: Sequence[Prepared]
    ) -> list[tuple[Clue, ...]]:
        """The strongest contributions of each comment, in calibrated log-odds, described in words.

        `owners`, `columns` and `weights` hold every nonzero contribution: the comment it belongs to, its
        feature column and its weight."""
        is_char = (columns >= self._char_start) & (columns < self._signal_start)
        # Character n-grams are unreadable one by one; together they count as a single clue.
        char_totals = np.bincount(owners[is_char], weights=weights[is_char], minlength=len(docs))
        strong = ~is_char & ((weights >= MIN_POSITIVE_WEIGHT) | (weights <= -MIN_NEGATIVE_WEIGHT))
        starts = np.searchsorted(owners[strong], np.arange(len(docs) + 1))
        strong_columns, strong_weights = columns[strong].tolist(), weights[strong].tolist()
        result = []
        for i, doc in enumerate(docs):
            span = slice(starts[i], starts[i + 1])
            candidates = list(zip(strong_weights[span], strong_columns[span], strict=True))
            result.append(self._chosen(candidates, float(char_totals[i]), doc))
        return result

    def _clues_of(
        self, columns: np.ndarray, weights: np.ndarray, doc: Prepared, site_part: float = 0.0
    ) -> tuple[Clue, ...]:
        """`_clues` of a single comment, without the bookkeeping that splits entries among comments."""
        # `CommentFeatures.row` gives the columns ascending, so the character n-grams are one slice.
        char_from, char_to = np.searchsorted(columns, self._block_starts).tolist()
        char_weights = weights[char_from:char_to]
        # The sum `_clues` takes with np.bincount, taken the same way: same order, so the same rounding.
        char_total = np.bincount(np.zeros(char_weights.size, dtype=np.intp), weights=char_weights, minlength=1)[0]
        candidates = [
            (weight, column)
            for part in (slice(0, char_from), slice(char_to, None))
            for weight, column in zip(weights[part].tolist(), columns[part].tolist(), strict=True)
            if weight >= MIN_POSITIVE_WEIGHT or weight <= -MIN_NEGATIVE_WEIGHT
        ]
        return self._chosen(candidates, float(char_total), doc, site_part)

    def _chosen(
        self, candidates: list[tuple[float, int]], char_total: float, doc: Prepared, site_part: float = 0.0
    ) -> tuple[Clue, ...]:
        """The clues of one comment from its strong (weight, column) word and signal contributions, the
        total of its character n-grams and what its site's own correction added."""
        if char_total:
            candidates.append((char_total, -1))
        if site_part:
            candidates.append((site_part, _SITE_CLUE))
        positive = sorted((x for x in candidates if x[0] >= MIN_POSITIVE_WEIGHT), reverse=True)
        negative = sorted(x for x in candidates if x[0] <= -MIN_NEGATIVE_WEIGHT)
        single_domain = doc.signals["url_domains"] <= math.log1p(1) + 1e-9
        chosen = self._distinct(positive, MAX_POSITIVE_CLUES, single_domain)
        chosen += self._distinct(negative, MAX_NEGATIVE_CLUES, single_domain)
        return tuple(self._describe(column, weight, doc) for weight, column in chosen)

    def _distinct(self, ranked: list[tuple[float, int]], limit: int, single_domain: bool) -> list[tuple[float, int]]:
        """Take up to `limit` clues, skipping ones that would only repeat another in other words."""
        chosen: list[tuple[float, int]] = []
        shown_words: set[str] = set()
        for weight, column in ranked:
            if len(chosen) == limit:
                break
            if 0 <= column < self._char_start:
                term = self._word_terms[column]
                words = term.split(" ")
                if (len(words) == 1 and words[0] in shown_words) or not any(ch.isalnum() for ch in term):
                    continue  # already said inside a phrase, or punctuation a moderator cannot act on
                shown_words.update(words)
            elif column == self._url_domains and single_domain:
                continue  # "1 different linked site" only repeats "1 link"
            chosen.append((weight, column))
        return chosen

    def _describe(self, column: int, weight: float, doc: Prepared) -> Clue:
        if column == _SITE_CLUE:
            side = "spam" if weight > 0 else "normal comments"
            return Clue("site", f"like what this site's moderators marked as {side}", weight)
        if column < 0:
            side = "spam" if weight > 0 else "normal comments"
            return Clue("char", f"spelling and character patterns typical of {side}", weight)
        if column < self._char_start:
            term = self._word_terms[column]
            return Clue(f"word:{term}", describe_term(term, doc), weight)
        name = self._signal_names[column - self._signal_start]
        return Clue(f"signal:{name}", describe_signal(name, doc.signals[name]), weight)


def _labels(examples: Sequence[LabelledComment]) -> np.ndarray:
    return np.array([1 if example.label is Label.SPAM else 0 for example in examples], dtype=np.int64)


def _check_examples(examples: Sequence[LabelledComment]) -> np.ndarray:
    if not examples:
        raise DataError("expected labelled comments to train on, found none")
    y = _labels(examples)
    spam, ham = int(y.sum()), int(len(y) - y.sum())
    if min(spam, ham) < 2:
        raise DataError(f"expected at least 2 spam and 2 ham examples, found {spam} spam and {ham} ham")
    return y


def _folds(examples: Sequence[LabelledComment], y: np.ndarray, random_state: int) -> list[tuple[np.ndarray, ...]]:
    """Cross-validation folds for calibration: by group when there are enough groups, else stratified.

    Groups are `folds.split_groups`: a YouTube video or a starter family stays in one fold, but the
    messages of a corpus that has a single group (all of SMS is "sms") are independent, because one
    fold of domain-shifted scores skews Platt's sigmoid (docs/experiments.md: calibration folds).
    """
    groups = np.array(split_groups(examples))
    n_groups = len(set(groups.tolist()))
    if 3 <= n_groups < len(y):  # all groups of one example: nothing to keep together, so stratify
        splitter = GroupKFold(n_splits=min(5, n_groups))
        return list(splitter.split(np.zeros(len(y)), y, groups))
    n_splits = max(2, min(5, int(y.sum()), int(len(y) - y.sum())))
    stratified = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=random_state)
    return list(stratified.split(np.zeros(len(y)), y))


def _fit_linear(
    matrix: sparse.csr_matrix, y: np.ndarray, weights: np.ndarray, c: float, random_state: int
) -> LogisticRegression:
    classifier = LogisticRegression(C=c, solver="liblinear", max_iter=1000, random_state=random_state)
    return classifier.fit(matrix, y, sample_weight=weights)


def source_weights(examples: Sequence[LabelledComment]) -> np.ndarray:
    """Per-example weights that give every source (corpus) the same total weight, averaging 1."""
    sources = [example.source for example in examples]
    sizes = {source: sources.count(source) for source in set(sources)}
    return np.array([len(sources) / (len(sizes) * sizes[source]) for source in sources])


def uniform_weights(examples: Sequence[LabelledComment]) -> np.ndarray:
    """Weight 1 for every example."""
    return np.ones(len(examples))


def capped_source_weights(examples: Sequence[LabelledComment]) -> np.ndarray:
    """Per-example weights that shrink every source larger than the median source size to that size in
    total (smaller sources keep weight 1 each), rescaled to average 1."""
    sources = [example.source for example in examples]
    sizes = {source: sources.count(source) for source in set(sources)}
    cap = float(np.median(list(sizes.values())))
    weights = np.array([min(1.0, cap / sizes[source]) for source in sources])
    return weights / weights.mean()


# How examples are weighted by source; "capped" is the default (docs/experiments.md: source weighting).
WEIGHTINGS = {
    "none": uniform_weights,
    "capped": capped_source_weights,
    "equal": source_weights,
}
DEFAULT_WEIGHTING = "capped"


def example_weights(examples: Sequence[LabelledComment], weighting: str = DEFAULT_WEIGHTING) -> np.ndarray:
    """Per-example training weights by `weighting` ("none", "capped" or "equal") times each example's own
    `weight`; raises ValueError for any other name."""
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {', '.join(WEIGHTINGS)}, found {weighting!r}")
    own = np.array([example.weight for example in examples], dtype=np.float64)
    return np.asarray(WEIGHTINGS[weighting](examples), dtype=np.float64) * own


@dataclass(frozen=True)
class Fitted:
    """A trained model and the out-of-fold log-odds its calibration was fitted on (one per example)."""

    model: SpamModel
    out_of_fold: np.ndarray


def fit_model(
    examples: Sequence[LabelledComment],
    *,
    version: str | None = None,
    thresholds: Thresholds | None = None,
    random_state: int = 0,
    c: float = DEFAULT_C,
    feature_params: dict[str, object] | None = None,
    balance_sources: bool = False,
    weighting: str = DEFAULT_WEIGHTING,
    progress: Callable[[str], None] | None = None,
) -> Fitted:
    """Train features, classifier and calibration on `examples`; also return the out-of-fold log-odds.

    Calibration is Platt scaling fitted on out-of-fold decision values (folds by source/group when
    there are at least three groups, so the probabilities reflect unseen videos or sites); the same
    values, calibrated, are what thresholds are read off (`training.fit_with_thresholds`), so one set of
    fold fits serves both. `weighting` weights examples by source in the fit and the calibration
    (`WEIGHTINGS`; by default a corpus larger than the median corpus counts as if it had the median
    size); `balance_sources=True` means `weighting="equal"`. `progress` hears of each fold. Raises
    DataError when there are fewer than 2 examples of either class and ValueError for an unknown weighting."""
    y = _check_examples(examples)
    weighting = "equal" if balance_sources else weighting
    weights = example_weights(examples, weighting)
    features = build_features(**(feature_params or {}))
    docs = features.prepare_many([example.comment for example in examples])
    out_of_fold = np.zeros(len(y))
    folds = _folds(examples, y, random_state)
    for number, (train, test) in enumerate(folds, start=1):
        started = time.perf_counter()
        fold_features = build_features(**(feature_params or {}))
        fold_matrix = fold_features.fit_transform_prepared([docs[i] for i in train])
        fold_classifier = _fit_linear(fold_matrix, y[train], weights[train], c, random_state)
        test_matrix = fold_features.transform_prepared([docs[i] for i in test])
        out_of_fold[test] = fold_classifier.decision_function(test_matrix)
        if progress is not None:
            seconds = time.perf_counter() - started
            progress(f"  fold {number}/{len(folds)}: {len(train)} train, {len(test)} held out ({seconds:.1f} s)")
    calibration = platt_scaling(out_of_fold, y, weights)
    classifier = _fit_linear(features.fit_transform_prepared(docs), y, weights, c, random_state)
    version = version or datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    model = SpamModel(features, classifier, calibration, version=version, thresholds=thresholds, weighting=weighting)
    return Fitted(model, out_of_fold)


def platt_scaling(decision: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None) -> tuple[float, float]:
    """Fit Platt's sigmoid p = 1 / (1 + exp(-(a·d + b))) to decision values `decision` and labels `y`.

    Uses Platt's smoothed targets ((n+ + 1) / (n+ + 2) and 1 / (n- + 2)) so that perfectly separated
    out-of-fold scores, common on small data, give a finite slope instead of certainty. `weights`
    (default all 1) weight each example's loss."""
    weights = np.ones(len(y)) if weights is None else weights
    positives = float(weights[y == 1].sum())
    negatives = float(weights[y == 0].sum())
    targets = np.where(y == 1, (positives + 1.0) / (positives + 2.0), 1.0 / (negatives + 2.0))

    def loss(params: np.ndarray) -> tuple[float, np.ndarray]:
        z = params[0] * decision + params[1]
        # log(1 + exp(z)) - t·z is the cross-entropy of sigmoid(z) against target t, computed stably.
        value = float(weights @ (np.logaddexp(0.0, z) - targets * z))
        residual = weights * (1.0 / (1.0 + np.exp(-z)) - targets)
        return value, np.array([float(residual @ decision), float(residual.sum())])

    prior = math.log((negatives + 1.0) / (positives + 1.0))
    result = minimize(loss, np.array([1.0, -prior]), jac=True, method="L-BFGS-B")
    return float(result.x[0]), float(result.x[1])


def comment_contents(comments: Sequence[Comment]) -> list[str]:
    """The raw content of each comment, minus invisible characters (the baseline's only input)."""
    return [normalize_invisible(comment.content) for comment in comments]


def normalize_invisible(text: str) -> str:
    """Remove only BOM and zero-width characters: the U+FEFF in the YouTube corpus leaks the label."""
    return text.replace("\ufeff", "").replace("\u200b", "")


def train_baseline(examples: Sequence[LabelledComment]) -> Pipeline:
    """Fit the comparison baseline: TF-IDF of the raw content + logistic regression, default settings."""
    y = _check_examples(examples)
    pipeline = Pipeline(
        [
            ("content", FunctionTransformer(comment_contents)),
            ("tfidf", TfidfVectorizer()),
            ("classifier", LogisticRegression(max_iter=1000)),
        ]
    )
    return pipeline.fit([example.comment for example in examples], y)


__all__ = ["SpamModel", "Thresholds", "comment_contents", "example_weights", "fit_model", "train_baseline"]
