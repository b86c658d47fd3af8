"""Start a site from its history: store an export's labelled comments for the site, then fit its own model.

    import_history(engine, model_dir, site_id, path, fmt, options) -> ImportResult

1. Read the whole export (`core.exports.read_export`): a bad row fails naming file and line before
   anything is stored.
2. Store every comment with its label in one transaction (source "import", dated as the export dates
   it), skipping comments of that site already imported with the same text and date, so importing the
   same file twice adds nothing. A failure rolls the whole file back.
3. Under the retrain lock, refit that site's own model on the champion and publish it (`refit_site_models`
   with `only`), so the site is served by its own model from the first hour.

Imported labels teach the site's own model fully. In the global model they weigh as the "import" source
(RETRAIN_SOURCE_WEIGHTS) and are capped per site and day of their own dates in a bucket of their own
(`site_learning.cap_key`), so a years-long history neither fills the day's cap of the site's live labels
nor weighs more than a day's cap per day it spans.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError

from moderation.comment import Comment, Label
from moderation.core.exports import read_export
from moderation.core.model_store import load_model
from moderation.errors import DataError, StoreError
from moderation.learning.retrain import Progress, RetrainOptions, load_champion, refit_site_models, retrain_lock
from moderation.learning.site_learning import IMPORT_SOURCE
from moderation.policy.rules import fingerprint
from moderation.store.db import make_sessionmaker
from moderation.store.schema import AuditEvent, CommentRecord, LabelRecord
from moderation.store.sites import get_site

_STATUS = {Label.SPAM: "spam", Label.HAM: "approve"}


def _quiet(_: str) -> None:
    """Say nothing."""


@dataclass
class ImportResult:
    """What an import stored and fitted."""

    site_id: int
    stored: int
    spam: int
    ham: int
    already: int  # comments already imported before (same text and date), not stored again
    skipped: dict[str, int] = field(default_factory=dict)  # pending, trash, deleted, empty
    version: str | None = None  # the published model with the site's own model, if one was fitted
    site_model_labels: int = 0


def import_history(
    engine: Engine,
    model_dir: Path,
    site_id: int,
    path: Path,
    fmt: str,
    options: RetrainOptions,
    *,
    progress: Progress = _quiet,
) -> ImportResult:
    """Store the export at `path` as site `site_id`'s labelled history, then fit and publish its own model.

    Raises DataError (unreadable or malformed export, nothing labelled in it), NotFoundError (no such
    site), StoreError (database; nothing stored). Fitting needs a champion: without one the history is
    stored and `version` stays None.
    """
    export = read_export(Path(path), fmt, progress)
    if not export.comments:
        found = ", ".join(f"{n} {reason}" for reason, n in export.skipped.items()) or "no comments"
        raise DataError(f"{path}: expected labelled comments (spam or approved), found {found}")
    progress(f"read {len(export.comments)} labelled comments from {path}")
    sessions = make_sessionmaker(engine)
    now = datetime.now(UTC)
    result = ImportResult(site_id=site_id, stored=0, spam=0, ham=0, already=0, skipped=dict(export.skipped))
    with sessions() as session:
        get_site(session, site_id)
        seen = {
            (content_hash, created.replace(tzinfo=UTC) if created.tzinfo is None else created)
            for content_hash, created in session.execute(
                select(CommentRecord.content_hash, CommentRecord.created_at).where(
                    CommentRecord.site_id == site_id, CommentRecord.source == IMPORT_SOURCE
                )
            )
        }
        try:
            for n, item in enumerate(export.comments, start=1):
                created = item.created_at or now
                content_hash = fingerprint(item.comment.content)
                if (content_hash, created) in seen:
                    result.already += 1
                    continue
                seen.add((content_hash, created))
                record = _record(site_id, item.comment, item.label, created, content_hash)
                session.add(record)
                session.flush()
                session.add(
                    LabelRecord(
                        comment_id=record.id,
                        label=item.label.value,
                        source=IMPORT_SOURCE,
                        actor=f"import:{Path(path).name}"[:200],
                        created_at=created,
                    )
                )
                result.stored += 1
                result.spam += item.label is Label.SPAM
                if n % 5000 == 0:
                    progress(f"  stored {n} of {len(export.comments)}")
            result.ham = result.stored - result.spam
            session.add(
                AuditEvent(
                    actor="cli",
                    action="site.import",
                    site_id=site_id,
                    detail={"file": Path(path).name, "format": fmt, "stored": result.stored, "already": result.already},
                )
            )
            session.commit()
        except SQLAlchemyError as exc:
            session.rollback()
            raise StoreError(f"could not store the import of {path} (nothing was stored): {exc}") from exc
    progress(f"stored {result.stored} comments ({result.spam} spam, {result.ham} ham); fitting the site's model")
    with retrain_lock(engine, options.lock_timeout, Path(model_dir)), sessions() as session:
        champion_version, champion = load_champion(session, Path(model_dir))
        if champion_version is None or champion is None:
            return result
        outcome = refit_site_models(
            session, Path(model_dir), champion_version, champion, options, progress, time.perf_counter(), only=[site_id]
        )
        if outcome.promoted:
            result.version = outcome.challenger
            fitted = load_model(Path(model_dir), outcome.challenger).sites.get(site_id)
            result.site_model_labels = fitted.n_labels if fitted is not None else 0
    return result


def _record(site_id: int, comment: Comment, label: Label, created: datetime, content_hash: str) -> CommentRecord:
    """The stored row of one imported comment: its automatic decision and status are the label's."""
    return CommentRecord(
        site_id=site_id,
        created_at=created,
        source=IMPORT_SOURCE,
        content=comment.content,
        content_hash=content_hash,
        author_name=comment.author_name[:500],
        author_email=comment.author_email[:500],
        author_url=comment.author_url[:2000],
        user_ip=comment.user_ip[:64],
        user_agent=comment.user_agent[:1000] if comment.user_agent else comment.user_agent,
        comment_type=comment.comment_type[:50],
        language=comment.language[:50],
        decision=_STATUS[label],
        status=_STATUS[label],
        status_changed_at=created,
    )


__all__ = ["ImportResult", "import_history"]
