"""Retrain from the store: public corpora + starter corpus + every stored label → challenger → maybe champion.

    retrain(engine, model_dir, data_dir, options) -> RetrainResult

1. Take the retrain lock (PostgreSQL advisory lock; a lock file beside a SQLite database), so two
   retrains run one after the other.
2. Hold out up to `holdout` recent labelled comments (latest label per comment, never `is_test`), shared
   among the sites so that none dominates, spam and ham from each (`choose_holdout`); their ids are
   left out of both the global training set and the site models.
3. Read everything else from the database in batches (server-side cursor), weighted and capped per site
   and day (`site_learning`), and train the challenger on it plus the corpora with the same trainer and
   threshold rule as `moderation train` (`training.fit_with_thresholds`). Then fit each site's own
   correction.
   With `sites_only`, steps 2-4 are instead: refit only each site's model, on every label, keeping the
   champion's global model (`refit_site_models`, the fast path), and promote that.
4. Score the held-out comments with the challenger and the champion, each with its site corrections,
   and compare on `metrics`. Promote only when the challenger is not worse on every one (or `force`);
   a held-out set without enough of one class cannot judge, and does not veto.
5. Save the challenger atomically (model_store), register it with its bytes and the comparison,
   promote it or not, prune old artifacts. `dry_run` stops before any of this and changes nothing.

A crash or a full disk anywhere before the promotion's single commit leaves the champion serving: the
artifact is written to a temp file and renamed, the registry row and bytes land in one transaction.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock, Timeout
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from moderation.comment import Label, LabelledComment
from moderation.core.classifier import Scorer, SpamModel
from moderation.core.corpora import deduplicate
from moderation.core.metrics import binary_metrics
from moderation.core.model_store import (
    current_version,
    load_model,
    new_version,
    read_manifest,
    save_model,
)
from moderation.core.site_model import SiteAdjustment
from moderation.core.training import build_training_set, fit_with_thresholds, free_version
from moderation.errors import ConfigError, DataError, StoreError
from moderation.learning.site_learning import (
    MARKS_KEY,
    PhraseSites,
    StoredLabel,
    cap_key,
    daily_counts,
    fit_site_adjustments,
    label_marks,
    label_weight,
    latest_labels_query,
    parse_source_weights,
    skeleton,
    stream_labels,
)
from moderation.store import registry
from moderation.store.db import make_sessionmaker
from moderation.store.schema import LabelRecord

# Exit codes of `moderation retrain`, for cron.
EXIT_PROMOTED = 0  # challenger promoted (or, with --dry-run, would be)
EXIT_ERROR = 1  # something went wrong: nothing changed
EXIT_NOT_PROMOTED = 3  # challenger saved but not better on every metric (or, with --dry-run, would not be)

RETRAIN_LOCK_KEY = 0x6D6F6472  # pg_advisory_lock key: any constant unique to this application
BATCH_SIZE = 2000  # stored comments read per round trip
MIN_HOLDOUT_PER_CLASS = 5  # fewer held-out spam or ham than this and a comparison means nothing
STORE_SOURCE = "store"  # the `source` stored labels train under (thresholds are also checked on them)

Progress = Callable[[str], None]

# Metrics a challenger can be judged on (names from metrics.binary_metrics): +1 higher is better.
METRIC_DIRECTIONS = {
    "roc_auc": 1,
    "recall_at_1pct_fpr": 1,
    "precision": 1,
    "recall": 1,
    "f1": 1,
    "mcc": 1,
    "mcc_at_spam": 1,
    "spam_caught": 1,
    "fpr": -1,
    "ham_blocked": -1,
}


def _quiet(_: str) -> None:
    """Say nothing."""


@dataclass(frozen=True)
class RetrainOptions:
    """What a retrain may do and how it judges; `from_settings` reads the MODERATION_* settings."""

    force: bool = False
    dry_run: bool = False
    sites_only: bool = False  # refit the champion's site models only (`refit_site_models`)
    metrics: tuple[str, ...] = ("recall_at_1pct_fpr", "mcc_at_spam")
    holdout: int = 1000
    keep_models: int = 5
    source_weights: dict[str, float] = field(
        default_factory=lambda: {"moderator": 1.0, "feedback": 0.5, "akismet": 0.5}
    )
    site_daily_cap: float = 25.0
    site_min_labels: int = 10
    site_max_labels: int = 5000
    lock_timeout: float = 3600.0
    random_state: int = 0

    @classmethod
    def from_settings(cls, values: dict[str, Any], **overrides: Any) -> RetrainOptions:
        """Options from a settings dict (see settings.py); ConfigError for unusable values."""
        metrics = tuple(m.strip() for m in str(values["RETRAIN_METRICS"]).split(",") if m.strip())
        unknown = [m for m in metrics if m not in METRIC_DIRECTIONS]
        if not metrics or unknown:
            raise ConfigError(
                f"RETRAIN_METRICS: expected names among {', '.join(sorted(METRIC_DIRECTIONS))}, "
                f"found {values['RETRAIN_METRICS']!r}"
            )
        options = cls(
            metrics=metrics,
            holdout=int(values["RETRAIN_HOLDOUT"]),
            keep_models=int(values["RETRAIN_KEEP_MODELS"]),
            source_weights=parse_source_weights(values["RETRAIN_SOURCE_WEIGHTS"]),
            site_daily_cap=float(values["RETRAIN_SITE_DAILY_CAP"]),
            site_min_labels=int(values["SITE_MIN_LABELS"]),
            site_max_labels=int(values["SITE_MAX_LABELS"]),
            lock_timeout=float(values["RETRAIN_LOCK_TIMEOUT"]),
        )
        return options.replace(**overrides)

    def replace(self, **changes: Any) -> RetrainOptions:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)


@dataclass
class RetrainResult:
    """What a retrain did: the comparison, the decision and where the challenger went."""

    challenger: str
    champion: str | None
    comparison: dict[str, dict[str, float]]
    holdout: dict[str, Any]  # Holdout.counts(): n, spam, ham, per-site figures
    training: dict[str, int]
    promoted: bool
    would_promote: bool
    reason: str
    dry_run: bool
    seconds: float
    pruned: list[str] = field(default_factory=list)
    sites: list[int] = field(default_factory=list)  # with sites_only: the sites whose models were refitted

    @property
    def exit_code(self) -> int:
        """EXIT_PROMOTED when promoted (dry run: would be), else EXIT_NOT_PROMOTED."""
        return EXIT_PROMOTED if self.would_promote else EXIT_NOT_PROMOTED


# --- the lock --------------------------------------------------------------------------------------------


@contextmanager
def retrain_lock(engine: Engine, timeout: float, model_dir: Path) -> Iterator[None]:
    """Hold the retrain lock for the block: a PostgreSQL advisory lock, or a file lock for SQLite.

    Waits up to `timeout` seconds; StoreError when another retrain still holds it.
    """
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.execute(text(f"SET lock_timeout = {int(max(timeout, 0.001) * 1000)}"))
            try:
                connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": RETRAIN_LOCK_KEY})
            except OperationalError as exc:
                raise StoreError(f"another retrain is still running after {timeout:.0f} s; try again later") from exc
            connection.commit()
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": RETRAIN_LOCK_KEY})
                connection.commit()
        return
    database = engine.url.database or ""
    path = f"{database}.retrain.lock" if database and database != ":memory:" else str(Path(model_dir) / ".retrain.lock")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    try:
        with FileLock(path, timeout=timeout):
            yield
    except Timeout as exc:
        raise StoreError(f"another retrain is still running after {timeout:.0f} s (lock {path})") from exc


# --- the data ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Holdout:
    """The labels held out to compare challenger and champion, and what each site gave or could not give.

    `label_ids` are left out of the global training set and of every site's model. `sites` maps a site
    id to the (spam, ham) it gave; `left_out` the (spam, ham) of sites that could give nothing because one
    class was too rare among their labels.
    """

    label_ids: frozenset[int] = frozenset()
    sites: dict[int, tuple[int, int]] = field(default_factory=dict)
    left_out: dict[int, tuple[int, int]] = field(default_factory=dict)

    def counts(self) -> dict[str, Any]:
        """What was held, for the result and the manifest: n, spam, ham, and the per-site figures."""
        spam = sum(s for s, _ in self.sites.values())
        ham = sum(h for _, h in self.sites.values())
        return {
            "n": spam + ham,
            "spam": spam,
            "ham": ham,
            "sites": {str(site): {"spam": s, "ham": h} for site, (s, h) in sorted(self.sites.items())},
            "left_out": {str(site): {"spam": s, "ham": h} for site, (s, h) in sorted(self.left_out.items())},
        }


def water_fill(capacities: dict[Any, int], total: int) -> dict[Any, int]:
    """Share `total` among keys as evenly as their capacities allow: small ones take all they have, the rest split."""
    shares: dict[Any, int] = {}
    remaining = max(total, 0)
    ordered = sorted(capacities.items(), key=lambda item: item[1])
    for i, (key, capacity) in enumerate(ordered):
        share = min(capacity, -(-remaining // (len(ordered) - i)))  # ceil: a remainder goes to the larger keys
        shares[key] = share
        remaining -= share
    return shares


def choose_holdout(session: Session, size: int) -> Holdout:
    """The held-out labels: the most recent ones, shared among sites so that no site dominates, both classes each.

    Each site may give at most a fifth of its latest labels of each class (its own model keeps the rest)
    and gives nothing unless that is at least one spam and one ham: a site whose labels are one class only
    (a key flooding submit-spam) measures nothing its labels could teach — one-class sites get no model
    of their own and their unconfirmed phrases stay out of the global one — so it could only veto. The
    `size` is shared evenly among the sites that can give (`water_fill`), and within a site between spam
    and ham, most recent first.
    """
    if size <= 0:
        return Holdout()
    latest = latest_labels_query().order_by(None).subquery()
    rows = session.execute(select(latest.c.id, latest.c.site_id, latest.c.label).order_by(latest.c.id.desc()))
    by_site: dict[int, dict[str, list[int]]] = {}
    for label_id, site_id, label in rows:
        by_site.setdefault(int(site_id), {Label.SPAM.value: [], Label.HAM.value: []})[str(label)].append(int(label_id))
    capacity: dict[int, tuple[int, int]] = {}
    left_out: dict[int, tuple[int, int]] = {}
    for site_id, ids in by_site.items():
        spam, ham = len(ids[Label.SPAM.value]), len(ids[Label.HAM.value])
        if min(spam // 5, ham // 5) >= 1:
            capacity[site_id] = (spam // 5, ham // 5)
        else:
            left_out[site_id] = (spam, ham)
    quotas = water_fill({site: s + h for site, (s, h) in capacity.items()}, size)
    chosen: set[int] = set()
    sites: dict[int, tuple[int, int]] = {}
    for site_id, quota in quotas.items():
        spam_cap, ham_cap = capacity[site_id]
        # Both classes first, then the rest evenly: a quota of 1 would otherwise hold one class only.
        per_class = water_fill({Label.SPAM.value: spam_cap, Label.HAM.value: ham_cap}, max(quota, 2))
        for label, n in per_class.items():
            chosen.update(by_site[site_id][label][:n])
        sites[site_id] = (per_class[Label.SPAM.value], per_class[Label.HAM.value])
    return Holdout(frozenset(chosen), sites, left_out)


def count_labels(session: Session) -> int:
    """How many comments have a label (never test checks)."""
    sub = latest_labels_query().order_by(None).subquery()
    return int(session.scalar(select(func.count()).select_from(sub)) or 0)


def stored_examples(
    session: Session,
    *,
    held: Holdout,
    options: RetrainOptions,
    stats: dict[str, int],
    progress: Progress = _quiet,
) -> list[LabelledComment]:
    """Stored labels except the held-out ones as weighted training examples (source "store", grouped by site).

    A label's weight is its source's weight times the per-site, per-day cap, less when no second site
    confirmed its phrases (`site_learning.label_weight`); repeats of (site, text skeleton, label) count
    once; labels whose weight comes to 0 (no other site confirmed them) are left out. `stats` gets the
    labels read ("stored"), the repeats skipped and the labels kept ("stored_in_global").
    """
    query = latest_labels_query()
    excluded = held.label_ids
    counts = daily_counts(session)
    sites = PhraseSites()
    for batch in stream_labels(session, query, BATCH_SIZE):  # first pass: which phrases several sites share
        for stored in batch:
            if stored.label_id in excluded:
                day = cap_key(stored.site_id, stored.labelled_at, stored.source)
                counts[day] = counts.get(day, 1) - 1
                continue
            sites.add(stored.site_id, stored.label, stored.comment.content)
    progress("  phrase agreement across sites counted")
    seen: set[tuple[int, str, str]] = set()
    stats.update(stored=0, stored_duplicates=0, stored_in_global=0)
    examples: list[LabelledComment] = []
    for batch in stream_labels(session, query, BATCH_SIZE):
        for stored in batch:
            if stored.label_id in excluded:
                continue
            key = (stored.site_id, skeleton(stored.comment.content), stored.label.value)
            if key in seen:
                stats["stored_duplicates"] += 1
                continue
            seen.add(key)
            stats["stored"] += 1
            weight = label_weight(
                stored, counts, source_weights=options.source_weights, daily_cap=options.site_daily_cap, sites=sites
            )
            if weight > 0:
                group = f"site-{stored.site_id}"
                examples.append(LabelledComment(stored.comment, stored.label, STORE_SOURCE, group, weight))
    stats["stored_in_global"] = len(examples)
    return examples


def holdout_examples(session: Session, held: Holdout) -> list[StoredLabel]:
    """The held-out stored labels, in memory (at most about RETRAIN_HOLDOUT of them)."""
    ids = sorted(held.label_ids)
    found: list[StoredLabel] = []
    for start in range(0, len(ids), BATCH_SIZE):  # bounded IN lists: SQLite caps bound parameters
        query = latest_labels_query().where(LabelRecord.id.in_(ids[start : start + BATCH_SIZE]))
        found.extend(stored for batch in stream_labels(session, query, BATCH_SIZE) for stored in batch)
    return found


# --- comparing -----------------------------------------------------------------------------------------------


def holdout_scores(model: Scorer, held: Sequence[StoredLabel]) -> np.ndarray:
    """Each held-out comment's spam probability from `model`, with its site's correction when it has one."""
    scores = np.zeros(len(held))
    by_site: dict[int, list[int]] = {}
    for i, stored in enumerate(held):
        by_site.setdefault(stored.site_id, []).append(i)
    for site_id, rows in by_site.items():
        scores[rows] = model.predict_proba_for_site([held[i].comment for i in rows], site_id)
    return scores


def compare(
    challenger: Scorer, champion: Scorer | None, held: Sequence[StoredLabel], metrics: Sequence[str]
) -> tuple[dict[str, dict[str, float]], bool, str]:
    """Metrics of both models on the held-out comments, and whether the challenger is not worse on any."""
    y = np.array([1 if s.label is Label.SPAM else 0 for s in held], dtype=int)
    spam, ham = int(y.sum()), int(len(y) - y.sum())
    mine = binary_metrics(y, holdout_scores(challenger, held), challenger.thresholds) if len(y) else {}
    theirs = binary_metrics(y, holdout_scores(champion, held), champion.thresholds) if champion and len(y) else {}
    keys = list(dict.fromkeys([*metrics, "roc_auc", "recall_at_1pct_fpr", "mcc", "mcc_at_spam", "ham_blocked"]))
    comparison = {
        k: {"challenger": float(mine.get(k, math.nan)), "champion": float(theirs.get(k, math.nan))} for k in keys
    }
    if champion is None:
        return comparison, True, "no champion yet"
    if min(spam, ham) < MIN_HOLDOUT_PER_CLASS:
        # A missing class measures nothing: it must not veto, or a single key's one-sided reports (or an
        # installation with no ham labels yet) would keep every challenger out. The challenger's own
        # out-of-fold thresholds still hold.
        return (
            comparison,
            True,
            (
                f"not compared: held out {spam} spam and {ham} ham, a comparison needs {MIN_HOLDOUT_PER_CLASS} of "
                "each; promoted on its out-of-fold checks alone"
            ),
        )

    def not_worse(metric: str) -> bool:
        mine, theirs = comparison[metric]["challenger"], comparison[metric]["champion"]
        if math.isnan(theirs):
            return True
        return bool(METRIC_DIRECTIONS.get(metric, 1) * (mine - theirs) >= -1e-12)

    worse = [m for m in metrics if not not_worse(m)]
    if worse:
        return comparison, False, "challenger is worse on " + ", ".join(worse)
    return comparison, True, "challenger is not worse on " + ", ".join(metrics)


# --- the pipeline ----------------------------------------------------------------------------------------


def load_champion(session: Session, model_dir: Path) -> tuple[str | None, SpamModel | None]:
    """The registry's champion (fetched into `model_dir` when missing), else the folder's CURRENT model."""
    row = registry.champion(session)
    if row is not None:
        registry.fetch_artifact(session, row.version, model_dir)
        return row.version, load_model(model_dir, row.version)
    version = current_version(model_dir)
    if version is None:
        return None, None
    return version, load_model(model_dir, version)


def retrain(
    engine: Engine,
    model_dir: Path,
    data_dir: Path | None,
    options: RetrainOptions,
    *,
    progress: Progress = _quiet,
) -> RetrainResult:
    """Train a challenger on corpora + stored labels, compare it with the champion, maybe promote it.

    Raises DataError (no usable training data), StoreError (database, lock), ModelError (the
    champion's artifact is missing or altered). Nothing changes when anything fails, nor with
    `options.dry_run`.
    """
    started = time.perf_counter()
    model_dir = Path(model_dir)
    sessions = make_sessionmaker(engine)
    with retrain_lock(engine, options.lock_timeout, model_dir), sessions() as session:
        if not options.dry_run:
            registry.adopt_current(session, model_dir, actor="retrain")
        champion_version, champion = load_champion(session, model_dir)
        progress(f"champion: {champion_version or 'none'}")
        if options.sites_only:
            return refit_site_models(session, model_dir, champion_version, champion, options, progress, started)

        labelled = count_labels(session)
        marks = label_marks(session)
        holdout_size = min(options.holdout, labelled // 5)
        holdout = choose_holdout(session, holdout_size)
        held = holdout_examples(session, holdout)
        stats: dict[str, int] = {"labelled": labelled, "holdout": len(held)}
        progress(
            f"stored labels: {labelled} ({len(held)} recent ones from {len(holdout.sites)} sites held out for the "
            "comparison)"
        )

        corpora = build_training_set(data_dir)
        progress(f"corpora: {len(corpora)} examples (starter{f' + {data_dir}' if data_dir else ''})")
        stored = stored_examples(session, held=holdout, options=options, stats=stats, progress=progress)
        examples = deduplicate([*corpora, *stored])
        stats.update(corpora=len(corpora), examples=len(examples))
        digest = hashlib.sha256(f"{len(corpora)}:{labelled}:{sorted(holdout.label_ids)}".encode()).hexdigest()
        version = free_version(model_dir, new_version(digest))
        progress(f"training the challenger on {len(examples)} examples ({stats['stored_in_global']} stored labels)")
        trained = fit_with_thresholds(examples, version=version, random_state=options.random_state, progress=progress)
        challenger = trained.model
        progress("fitting per-site corrections")
        challenger.sites = _site_models(session, challenger, options, progress, exclude=holdout.label_ids)
        comparison, better, reason = compare(challenger, champion, held, options.metrics)
        would_promote = better or options.force
        if options.force and not better:
            reason += " (promoted anyway: --force)"
        held_counts = holdout.counts()
        for site_id, (spam, ham) in holdout.sites.items():  # not in its site model yet: a refit will add them
            marks["counts"][str(site_id)] = marks["counts"].get(str(site_id), 0) - spam - ham
        outcome = RetrainResult(
            challenger=version,
            champion=champion_version,
            comparison=comparison,
            holdout=held_counts,
            training={**stats, "sites_with_corrections": len(challenger.sites)},
            promoted=False,
            would_promote=would_promote,
            reason=reason,
            dry_run=options.dry_run,
            seconds=0.0,
        )
        if options.dry_run:
            outcome.seconds = round(time.perf_counter() - started, 2)
            return outcome

        metrics = json_safe(
            {
                **trained.metrics,
                "comparison": comparison,
                "holdout": held_counts,
                "champion": champion_version,
                "promoted": would_promote,
                "reason": reason,
            }
        )
        data = {
            "fingerprint": digest,
            "counts": outcome.training,
            "data_dir": str(data_dir) if data_dir is not None else None,
            "holdout_label_ids": len(holdout.label_ids),
            MARKS_KEY: marks,
        }
        _publish(session, model_dir, challenger, outcome, options, data, metrics, "retrain", progress)
        outcome.seconds = round(time.perf_counter() - started, 2)
        return outcome


def refit_site_models(
    session: Session,
    model_dir: Path,
    champion_version: str | None,
    champion: SpamModel | None,
    options: RetrainOptions,
    progress: Progress,
    started: float,
    only: Collection[int] | None = None,
) -> RetrainResult:
    """The fast path: the champion's global model with every site's (or the `only` sites') model refitted.

    Seconds per site instead of a full retrain, so a site's new labels shape its decisions soon (cron it
    every few minutes, or let the server do it: `site_refit`). The global part is the champion's,
    unchanged, so there is nothing to compare: the result is promoted (with `dry_run`: only fitted). No
    labels are held out: each site model is chosen by cross-validation within its own labels. With
    `only`, the other sites keep the champion's models, and when no site model changed nothing is
    published (`would_promote` False). Called under the retrain lock. Raises DataError when there is no
    champion to refit.
    """
    if champion_version is None or champion is None:
        raise DataError("--sites-only refits the site models of the champion, found none; run `moderation train` first")
    labelled = count_labels(session)
    marks = label_marks(session)  # read before fitting: a label arriving meanwhile counts as new next time
    digest = hashlib.sha256(f"sites:{champion_version}:{labelled}:{marks['through']}".encode()).hexdigest()
    version = free_version(model_dir, new_version(digest))
    progress(f"refitting per-site models on {champion_version}'s global model")
    fitted = _site_models(session, champion, options, progress, only=only)
    sites = fitted if only is None else {**{k: v for k, v in champion.sites.items() if k not in only}, **fitted}
    model = champion.with_sites(version, sites)
    changed = only is None or bool(fitted) or any(site in champion.sites for site in only)
    reason = f"site models refitted on {champion_version}'s global model (unchanged)"
    if not changed:
        reason = "no site model changed (one class only, or too few labels): nothing published"
    outcome = RetrainResult(
        challenger=version,
        champion=champion_version,
        comparison={},
        holdout={"n": 0, "spam": 0, "ham": 0},
        training={"labelled": labelled, "sites_with_corrections": len(model.sites), "sites_refitted": len(fitted)},
        promoted=False,
        would_promote=changed,
        reason=reason,
        dry_run=options.dry_run,
        seconds=0.0,
        sites=sorted(fitted) if only is None else sorted(only),
    )
    if changed and not options.dry_run:
        before = read_manifest(model_dir, champion_version)
        metrics = json_safe({**before.metrics, "sites_only": True, "global_from": champion_version, "reason": reason})
        data = {**before.data, "sites_refitted_on_labels": labelled, MARKS_KEY: marks}
        _publish(session, model_dir, model, outcome, options, data, metrics, "retrain --sites-only", progress)
    outcome.seconds = round(time.perf_counter() - started, 2)
    return outcome


def _site_models(
    session: Session,
    model: SpamModel,
    options: RetrainOptions,
    progress: Progress,
    exclude: frozenset[int] = frozenset(),
    only: Collection[int] | None = None,
) -> dict[int, SiteAdjustment]:
    """Every site's (or the `only` sites') own correction to `model`, within the options' label limits, leaving out
    the `exclude` label ids."""
    return fit_site_adjustments(
        session,
        model,
        min_labels=options.site_min_labels,
        max_labels=options.site_max_labels,
        source_weights=options.source_weights,
        exclude=exclude,
        only=only,
        progress=progress,
    )


def _publish(
    session: Session,
    model_dir: Path,
    model: SpamModel,
    outcome: RetrainResult,
    options: RetrainOptions,
    data: dict[str, Any],
    metrics: dict[str, Any],
    actor: str,
    progress: Progress,
) -> None:
    """Save and register `model` (the challenger `outcome` names), promote it if `outcome.would_promote`, prune.

    Sets `outcome.promoted` and `outcome.pruned`. Raises what saving and the registry raise (OSError,
    StoreError); the champion stays when anything before the promotion fails.
    """
    manifest = save_model(model_dir, model, data=data, metrics=metrics, make_current=False)
    progress(f"saved {manifest.artifact} ({manifest.size_bytes / 1e6:.1f} MB)")
    registry.register(session, model_dir, outcome.challenger, actor=actor)
    if outcome.would_promote:
        registry.promote(session, outcome.challenger, actor=actor, model_dir=model_dir)
        outcome.promoted = True
        progress(f"promoted {outcome.challenger}")
    outcome.pruned = registry.prune(session, model_dir, options.keep_models, actor=actor)


def json_safe(value: Any) -> Any:
    """`value` with every NaN or infinite float replaced by None, so PostgreSQL's JSON type accepts it.

    A held-out slice with one class has no ROC AUC or recall: the comparison says NaN, which Python's
    json writes but PostgreSQL refuses (the registry row would fail after the artifact was saved).
    """
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value


__all__ = [
    "EXIT_ERROR",
    "EXIT_NOT_PROMOTED",
    "EXIT_PROMOTED",
    "Holdout",
    "RetrainOptions",
    "RetrainResult",
    "choose_holdout",
    "compare",
    "json_safe",
    "refit_site_models",
    "retrain",
    "retrain_lock",
    "stored_examples",
]
