"""Learning without cron: refit a site's own model soon after its moderators label, in the running service.

    refit_due_sites(engine, model_dir, options, policy) -> RetrainResult | None

Every published model records in its manifest how many labels each site had when its site models were
fitted (`label_marks`, under `data["site_labels"]`, with the highest label id then read). A site is
*due* when its count changed and either `policy.labels` new labels arrived or the oldest of them is
`policy.seconds` old (`due_sites`); a site whose count changed without any newer label id (labels
held out by a retrain, a label committed late, a purge) is due at once. `refit_due_sites` takes the
retrain lock without waiting — so across workers and hosts one refit runs at a time and a full retrain
is never interrupted — reads the champion again under it, refits the due sites only (the others keep
their models) and publishes the result like `retrain --sites-only`; every worker's hot reload then
serves it. Nothing is due: None, and nothing is read beyond one grouped count.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from moderation import settings
from moderation.core.model_store import current_version, read_manifest
from moderation.errors import StoreError
from moderation.learning.retrain import (
    Progress,
    RetrainOptions,
    RetrainResult,
    load_champion,
    refit_site_models,
    retrain_lock,
)
from moderation.learning.site_learning import MARKS_KEY, SiteLabels, site_labels
from moderation.store import registry
from moderation.store.db import make_engine, make_sessionmaker

# A refit process's niceness: checks in the workers get the CPU first (bench_refit_latency).
REFIT_NICENESS = 10


@dataclass(frozen=True)
class RefitPolicy:
    """When a site's new labels are worth a refit: this many of them, or the oldest this many seconds old."""

    labels: int = 20
    seconds: float = 60.0

    @classmethod
    def from_settings(cls, values: Mapping[str, Any]) -> RefitPolicy:
        """The policy from MODERATION_SITE_REFIT_LABELS and MODERATION_SITE_REFIT_SECONDS."""
        return cls(labels=max(1, int(values["SITE_REFIT_LABELS"])), seconds=float(values["SITE_REFIT_SECONDS"]))


def due_sites(
    found: Mapping[int, SiteLabels],
    marks: Mapping[str, Any] | None,
    policy: RefitPolicy,
    *,
    min_labels: int,
    now: datetime,
) -> list[int]:
    """The sites whose labels (`found`: `site_labels` after the marks' "through") changed enough since `marks`.

    `marks` is a model's record (`label_marks`; None: never recorded, so every site with labels is due).
    """
    counts = {int(site): int(n) for site, n in (marks or {}).get("counts", {}).items()}
    due = []
    for site_id, labels in sorted(found.items()):
        before = counts.get(site_id, 0)
        if labels.count == before or labels.count < min_labels:
            continue
        waited = (now - labels.oldest_new_at).total_seconds() if labels.oldest_new_at is not None else None
        if labels.count - before >= policy.labels or waited is None or waited >= policy.seconds:
            due.append(site_id)
    return due


def refit_due_sites(
    engine: Engine,
    model_dir: Path,
    options: RetrainOptions,
    policy: RefitPolicy,
    *,
    unchanged: dict[int, int] | None = None,
    progress: Progress | None = None,
) -> RetrainResult | None:
    """Refit and publish the due sites' models on the champion; None when nothing is due or the lock is taken.

    `unchanged` maps sites to the label count at which a refit changed nothing (one class only): they are
    not due again until their count moves; this call adds to it. Raises what `refit_site_models` raises
    (StoreError, OSError, DataError).
    """
    started = time.perf_counter()
    model_dir = Path(model_dir)
    sessions = make_sessionmaker(engine)
    unchanged = {} if unchanged is None else unchanged
    with sessions() as session:  # first without the lock: most polls find nothing due
        if not _due(session, model_dir, options, policy, unchanged)[1]:
            return None
    try:
        with retrain_lock(engine, 0.0, model_dir), sessions() as session:
            counts, due = _due(session, model_dir, options, policy, unchanged)  # again: another worker may be done
            if not due:
                return None
            champion_version, champion = load_champion(session, model_dir)
            result = refit_site_models(
                session, model_dir, champion_version, champion, options, progress or _quiet, started, only=due
            )
    except StoreError as exc:
        if "another retrain" in str(exc):
            return None  # a retrain or another worker's refit holds the lock; the next poll looks again
        raise
    if not result.would_promote:
        unchanged.update({site: counts.get(site, 0) for site in due})
    return result


def _due(
    session: Session, model_dir: Path, options: RetrainOptions, policy: RefitPolicy, unchanged: Mapping[int, int]
) -> tuple[dict[int, int], list[int]]:
    """Each site's label count now, and the due sites (`due_sites` on the champion's marks, less `unchanged`)."""
    row = registry.champion(session)
    if row is not None:
        marks = (row.manifest.get("data") or {}).get(MARKS_KEY)
    else:
        version = current_version(model_dir)
        if version is None:
            return {}, []
        marks = read_manifest(model_dir, version).data.get(MARKS_KEY)
    found = site_labels(session, through=int((marks or {}).get("through", 0)))
    counts = {site: labels.count for site, labels in found.items()}
    due = due_sites(found, marks, policy, min_labels=options.site_min_labels, now=datetime.now(UTC))
    return counts, [site for site in due if unchanged.get(site) != counts.get(site)]


def due_now(
    engine: Engine, model_dir: Path, options: RetrainOptions, policy: RefitPolicy, unchanged: Mapping[int, int]
) -> list[int]:
    """The sites a refit pass would refit now (two small queries, no lock, nothing loaded)."""
    with make_sessionmaker(engine)() as session:
        return _due(session, Path(model_dir), options, policy, unchanged)[1]


def lock_is_free(engine: Engine, model_dir: Path) -> bool:
    """Whether the retrain lock could be taken right now (taken and released at once)."""
    try:
        with retrain_lock(engine, 0.0, Path(model_dir)):
            return True
    except StoreError:
        return False


def main(argv: list[str] | None = None) -> None:
    """One refit pass in a process of its own (`python -m moderation.learning.site_refit [UNCHANGED_JSON]`).

    Settings come from the MODERATION_* environment; the process lowers its own priority first, so the
    workers serving checks win the CPU. Prints one JSON line: promoted, the sites refitted, their counts.
    """
    os.nice(REFIT_NICENESS)
    args = sys.argv[1:] if argv is None else argv
    unchanged = {int(site): int(n) for site, n in json.loads(args[0] if args else "{}").items()}
    values = settings.load()
    engine = make_engine(settings.database_url(values))
    try:
        result = refit_due_sites(
            engine,
            Path(values["MODEL_DIR"]),
            RetrainOptions.from_settings(values),
            RefitPolicy.from_settings(values),
            unchanged=unchanged,
        )
    finally:
        engine.dispose()
    summary = {"promoted": False, "sites": [], "unchanged": unchanged, "version": None, "seconds": 0.0}
    if result is not None:
        summary.update(promoted=result.promoted, sites=result.sites, version=result.challenger, seconds=result.seconds)
    print(json.dumps(summary))


def _quiet(_: str) -> None:
    """Say nothing."""


__all__ = ["RefitPolicy", "due_now", "due_sites", "lock_is_free", "refit_due_sites"]


if __name__ == "__main__":
    main()
