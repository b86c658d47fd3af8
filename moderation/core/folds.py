"""Grouped cross-validation: which examples a split keeps together, and the folds built from that."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from moderation.comment import Label, LabelledComment
from moderation.errors import DataError

DEFAULT_FOLDS = 5


def split_groups(examples: Sequence[LabelledComment]) -> list[str]:
    """The unit a split keeps together: source plus group, or the example itself when it has no group.

    A source whose examples all share one group (the SMS corpus labels every message "sms") has no
    meaningful grouping, so its examples count as independent; otherwise a fold would hold out the
    whole corpus and measure a domain shift instead of unseen messages.
    """
    groups_per_source: dict[str, set[str]] = {}
    for e in examples:
        groups_per_source.setdefault(e.source, set()).add(e.group)
    return [
        f"{e.source}:{e.group}" if e.group and len(groups_per_source[e.source]) > 1 else f"{e.source}#{i}"
        for i, e in enumerate(examples)
    ]


def labels(examples: Sequence[LabelledComment]) -> np.ndarray:
    """1 for spam, 0 for ham."""
    return np.array([1 if e.label == Label.SPAM else 0 for e in examples], dtype=np.int8)


def grouped_folds(
    examples: Sequence[LabelledComment], folds: int = DEFAULT_FOLDS, random_state: int = 0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) index pairs of a stratified k-fold that never splits a group across folds."""
    y = labels(examples)
    smallest = int(min(y.sum(), len(y) - y.sum()))
    groups = split_groups(examples)
    n_splits = min(folds, smallest, len(set(groups)))
    if n_splits < 2:
        raise DataError(
            f"need at least 2 spam, 2 ham and 2 groups to cross-validate, found {int(y.sum())} spam, "
            f"{len(y) - int(y.sum())} ham, {len(set(groups))} groups"
        )
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=random_state)
    return [(train, test) for train, test in splitter.split(np.zeros(len(y)), y, groups)]
