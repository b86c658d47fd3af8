"""Decision thresholds read off held-out ham scores, so that each band blocks at most a chosen share of ham.

Thresholds are read off the scores the model gives comments it did *not* see in training: out-of-fold
predictions from a grouped, stratified k-fold. Only the ham scores matter, so the thresholds do not
depend on the corpora's unrealistic ~50% spam share:

- `spam`    (auto-spam): the lowest score at or above which at most 1% of ham falls.
- `discard` (blatant spam): the same for 0.1% of ham.
- `hold`    (a moderator looks): the same for 2% of ham, i.e. 98% of legitimate comments are below it
  and publish at once; the band [hold, spam) is where the probability starts to matter but is not yet
  trustworthy enough to act on alone.

Each rate is met in every source that holds at least `MIN_HAM_PER_SOURCE` ham, not only on the pooled
ham, so one corpus's plain ham cannot make the thresholds lax for another. The blocking thresholds
(`spam`, `discard`) must also hold on the starter corpus's risky-looking ham, and never block a comment
more likely ham than spam; the `hold` threshold is read off ordinary ham only. Within a source whose ham
comes in groups (YouTube videos) each rate is validated group by group (`group_validated_rate`): a new
site's comments are a group the model has not seen.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from moderation.comment import Decision, Label, LabelledComment
from moderation.core.folds import split_groups


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Probability cut-offs: p < hold → approve; < spam → hold; < discard → spam; else discard."""

    hold: float = 0.5
    spam: float = 0.9
    discard: float = 0.99

    def __post_init__(self) -> None:
        if not 0.0 <= self.hold <= self.spam <= self.discard <= 1.0:
            raise ValueError(
                f"thresholds must satisfy 0 <= hold <= spam <= discard <= 1, "
                f"found hold={self.hold}, spam={self.spam}, discard={self.discard}"
            )

    def decide(self, probability: float) -> Decision:
        """Return the decision for a calibrated spam probability."""
        if probability < self.hold:
            return Decision.APPROVE
        if probability < self.spam:
            return Decision.HOLD
        if probability < self.discard:
            return Decision.SPAM
        return Decision.DISCARD


HOLD_HAM_RATE = 0.02
# The hold band starts at or below this probability, however little ham there was to place it on.
MAX_HOLD = 0.5


SPAM_HAM_RATE = 0.01


DISCARD_HAM_RATE = 0.001


MIN_HAM_PER_SOURCE = 100


# The starter corpus's ham is written to look risky (links, prices, code, heated words) and grouped by
# kind of site, so its out-of-fold scores measure unseen *kinds* of ham, not how often ordinary ham
# scores high: it bounds what may be blocked, not where review starts (docs/experiments.md: Starter
# corpus and the ham rates).
HOLD_IGNORED_SOURCES = frozenset({"starter"})


# `group_validated_rate`: a source needs 3+ groups for a held-out group to be judged against a pool of
# several others, and the candidate rates shrink in 20 steps (5% of the rate each), so that unseen videos
# keep to the promised share of ham (docs/experiments.md: Ham rates validated group by group).
MIN_RATE_GROUPS = 3


RATE_SHRINK_STEPS = 20


def threshold_for_ham_rate(ham_scores: np.ndarray, rate: float) -> float:
    """The lowest threshold t such that at most `rate` of `ham_scores` are ≥ t.

    With n ham, k = floor(rate·n) of them may sit at or above t, so t is the smallest float strictly
    above the (k+1)-th highest ham score (ties at that score all stay below t). With no ham at all
    there is nothing to measure and 0.5 is returned. The result is capped at 1.0 (Thresholds' bound), so
    ham scored exactly 1.0 cannot be kept below it.
    """
    return float(thresholds_for_ham_rates(ham_scores, np.array([rate]))[0])


def thresholds_for_ham_rates(ham_scores: np.ndarray, rates: np.ndarray) -> np.ndarray:
    """`threshold_for_ham_rate` for each of `rates` at once (the scores are sorted once)."""
    scores = np.sort(np.asarray(ham_scores, dtype=float))[::-1]
    rates = np.asarray(rates, dtype=float)
    if scores.size == 0:
        return np.full(rates.shape, 0.5)
    allowed = np.floor(rates * scores.size + 1e-9).astype(int)
    above = np.minimum(np.nextafter(scores[np.minimum(allowed, scores.size - 1)], np.inf), 1.0)
    return np.where(allowed >= scores.size, 0.0, above)


def group_validated_rate(ham_scores: np.ndarray, groups: np.ndarray, rate: float) -> float:
    """The share of ham to allow on pooled out-of-fold scores so that unseen groups see at most `rate`.

    For each candidate share (`rate`, then 95%, 90% … 5% of it; `RATE_SHRINK_STEPS`), every group is
    held out in turn: the threshold for that share is read off the other groups' ham and the held-out
    group's ham at or above it is counted. The first (largest) share whose count, summed over all
    groups, is at most `rate` of all ham wins; the smallest is returned when none does. `groups` gives
    each score's group; with fewer than `MIN_RATE_GROUPS` groups, or one score per group (nothing is
    grouped), `rate` is returned unchanged.
    """
    scores = np.asarray(ham_scores, dtype=float)
    groups = np.asarray(groups)
    names = np.unique(groups)
    if not MIN_RATE_GROUPS <= len(names) < len(scores):
        return rate
    shares = rate * np.arange(RATE_SHRINK_STEPS, 0, -1) / RATE_SHRINK_STEPS
    blocked = np.zeros(len(shares))
    for name in names:
        held_out = groups == name
        thresholds = thresholds_for_ham_rates(scores[~held_out], shares)
        blocked += np.sum(scores[held_out][:, None] >= thresholds[None, :], axis=0)
    meets = np.flatnonzero(blocked <= rate * len(scores) + 1e-9)
    return float(shares[meets[0]] if meets.size else shares[-1])


def choose_thresholds(
    ham_scores: np.ndarray | Mapping[str, np.ndarray],
    *,
    hold_rate: float = HOLD_HAM_RATE,
    spam_rate: float = SPAM_HAM_RATE,
    discard_rate: float = DISCARD_HAM_RATE,
    min_ham: int = MIN_HAM_PER_SOURCE,
    hold_ignores: frozenset[str] = HOLD_IGNORED_SOURCES,
    groups: Mapping[str, np.ndarray] | None = None,
) -> Any:
    """Thresholds(hold, spam, discard) that send at most the given shares of held-out ham to each band.

    `ham_scores` is one array, or a mapping source → array: then each rate must hold on the pooled ham
    and in every source with at least `min_ham` ham (the strictest threshold wins). Sources in
    `hold_ignores` do not place `hold` unless the others hold fewer than `min_ham` ham between them.
    `groups` (source → each ham score's group, as `ham_groups_by_source` gives) makes a grouped source
    meet each rate on its groups held out one at a time (`group_validated_rate`).
    """
    blocking = _pools(ham_scores, frozenset(), min_ham, groups)
    spam = max(_strictest(blocking, spam_rate), MAX_HOLD)
    discard = max(_strictest(blocking, discard_rate), spam)
    # Whatever the ham allows, a comment more likely spam than not is never published unseen.
    hold = min(_strictest(_pools(ham_scores, hold_ignores, min_ham, groups), hold_rate), spam, MAX_HOLD)
    return Thresholds(hold=hold, spam=spam, discard=discard)


_Pool = tuple[np.ndarray, np.ndarray | None]


def _pools(
    ham_scores: np.ndarray | Mapping[str, np.ndarray],
    ignored: frozenset[str],
    min_ham: int,
    groups: Mapping[str, np.ndarray] | None,
) -> list[_Pool]:
    """The ham pools a rate must hold on: all kept ham, and each kept source with `min_ham` ham (with groups)."""
    if not isinstance(ham_scores, Mapping):
        return [(np.asarray(ham_scores, dtype=float), None)]
    kept = {s: np.asarray(v, dtype=float) for s, v in ham_scores.items() if s not in ignored and len(v)}
    if sum(len(v) for v in kept.values()) < min_ham:  # too little ham to place a rate on: use it all
        kept = {s: np.asarray(v, dtype=float) for s, v in ham_scores.items()}
    pools: list[_Pool] = [(np.concatenate([np.zeros(0), *kept.values()]), None)]
    return pools + [(scores, (groups or {}).get(s)) for s, scores in kept.items() if len(scores) >= min_ham]


def _strictest(pools: Sequence[_Pool], rate: float) -> float:
    return max(
        threshold_for_ham_rate(pool, rate if names is None else group_validated_rate(pool, names, rate))
        for pool, names in pools
    )


def held_out_thresholds(examples: Sequence[LabelledComment], scores: np.ndarray) -> Any:
    """`choose_thresholds` for out-of-fold `scores` of `examples`: per source, grouped sources group by group."""
    return choose_thresholds(ham_scores_by_source(examples, scores), groups=ham_groups_by_source(examples))


def ham_scores_by_source(examples: Sequence[LabelledComment], scores: np.ndarray) -> dict[str, np.ndarray]:
    """The scores of the ham examples, per source."""
    return _ham_by_source(examples, [float(score) for score in scores])


def ham_groups_by_source(examples: Sequence[LabelledComment]) -> dict[str, np.ndarray]:
    """The group (`split_groups`) of each ham example, per source, in `ham_scores_by_source`'s order."""
    return _ham_by_source(examples, split_groups(examples))


def _ham_by_source(examples: Sequence[LabelledComment], values: Sequence[Any]) -> dict[str, np.ndarray]:
    by_source: dict[str, list[Any]] = {}
    for example, value in zip(examples, values, strict=True):
        if example.label == Label.HAM:
            by_source.setdefault(example.source, []).append(value)
    return {source: np.array(found) for source, found in sorted(by_source.items())}
