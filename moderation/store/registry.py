"""The model registry in the database: which saved model every worker and host should serve.

    register(session, model_dir, version)   record a saved model (manifest + artifact bytes) as a candidate
    promote(session, version, ...)          make it the champion (the previous one becomes "retired")
    rollback(session, ...)                  reject the champion, bring back the one promoted before it
    champion(session) / champion_version(engine)
    list_versions(session), get_version(session, version)
    fetch_artifact(session, version, model_dir)   copy a registered artifact into a model folder, verified
    prune(session, model_dir, keep)         delete old artifacts (files and bytes), never the champion

Statuses: `candidate` (saved, never promoted), `champion` (exactly one at most), `retired` (was champion),
`rejected` (rolled back: a later rollback skips it), `pruned` (artifact deleted; the row stays as history).

The artifact bytes live in the database too, so a host that never trained the model can still load it:
`fetch_artifact` writes them into its MODEL_DIR atomically after checking their SHA-256 against the
registered manifest, and `model_store.load_model` checks again before unpickling.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from moderation.core.model_store import (
    Manifest,
    artifact_path,
    current_version,
    manifest_path,
    read_manifest,
    set_current,
)
from moderation.errors import ModelIntegrityError, NotFoundError, StoreError
from moderation.store.schema import AuditEvent, ModelArtifact, ModelVersion

CHAMPION, CANDIDATE, RETIRED, REJECTED, PRUNED = "champion", "candidate", "retired", "rejected", "pruned"


def _commit(session: Session, what: str) -> None:
    try:
        session.commit()
    except SQLAlchemyError as exc:
        session.rollback()
        raise StoreError(f"could not {what}: {type(exc).__name__}: {str(exc).splitlines()[0]}") from exc


def _audit(session: Session, actor: str, action: str, detail: dict[str, Any]) -> None:
    session.add(AuditEvent(at=datetime.now(UTC), actor=actor, action=action, detail=detail))


def get_version(session: Session, version: str) -> ModelVersion:
    """The registry row of `version`; NotFoundError when it was never registered."""
    row = session.get(ModelVersion, version)
    if row is None:
        raise NotFoundError(f"model version {version!r} is not in the registry (see `moderation models list`)")
    return row


def list_versions(session: Session) -> list[ModelVersion]:
    """Every registered version, newest first."""
    return list(session.scalars(select(ModelVersion).order_by(ModelVersion.created_at.desc(), ModelVersion.version)))


def champion(session: Session) -> ModelVersion | None:
    """The champion's row, or None when nothing was promoted yet."""
    return session.scalars(select(ModelVersion).where(ModelVersion.status == CHAMPION).limit(1)).first()


def champion_version(engine: Engine) -> str | None:
    """The champion's version name (one small query; what serving workers poll)."""
    with engine.connect() as connection:
        found = connection.execute(
            select(ModelVersion.version).where(ModelVersion.status == CHAMPION).limit(1)
        ).scalar_one_or_none()
    return str(found) if found is not None else None


def register(
    session: Session, model_dir: Path, version: str, *, actor: str = "system", metrics: dict[str, Any] | None = None
) -> ModelVersion:
    """Record a model saved in `model_dir` as a candidate, with its manifest and artifact bytes.

    Registering a version twice is a no-op (returns the existing row) as long as the hashes agree;
    ModelIntegrityError when the artifact does not match its manifest or the registered hash.
    `metrics` are merged into the stored manifest (e.g. the champion/challenger comparison).
    """
    manifest = read_manifest(model_dir, version)
    payload = artifact_path(model_dir, version).read_bytes()
    digest = hashlib.sha256(payload).hexdigest()
    if digest != manifest.sha256:
        raise ModelIntegrityError(f"model {version}: artifact SHA-256 is {digest}, its manifest says {manifest.sha256}")
    existing = session.get(ModelVersion, version)
    if existing is not None:
        if existing.sha256 != digest:
            raise ModelIntegrityError(
                f"model {version} is registered with SHA-256 {existing.sha256}, the file has {digest}"
            )
        return existing
    stored = _manifest_dict(manifest)
    if metrics:
        stored["metrics"] = {**stored.get("metrics", {}), **metrics}
    row = ModelVersion(
        version=version,
        created_at=datetime.now(UTC),
        sha256=digest,
        manifest=stored,
        status=CANDIDATE,
    )
    session.add(row)
    session.flush()
    session.add(ModelArtifact(version=version, content=payload, size_bytes=len(payload)))
    _audit(session, actor, "model.register", {"version": version, "sha256": digest})
    _commit(session, f"register model {version}")
    return row


def _manifest_dict(manifest: Manifest) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(manifest.to_json())
    return loaded


def promote(session: Session, version: str, *, actor: str = "system", model_dir: Path | None = None) -> ModelVersion:
    """Make `version` the champion; the previous champion becomes "retired". Audited.

    NotFoundError for an unknown version; ModelIntegrityError when its artifact was pruned. With
    `model_dir`, that folder's CURRENT file follows (for `moderation check` and single-host setups).
    """
    row = get_version(session, version)
    if row.status == PRUNED:
        raise ModelIntegrityError(f"model {version}: its artifact was pruned; it cannot be promoted again")
    now = datetime.now(UTC)
    previous = champion(session)
    if previous is not None and previous.version != version:
        previous.status = RETIRED
        session.flush()  # the old champion steps down before the new one steps up
    row.status = CHAMPION
    row.promoted_at = now
    _audit(
        session,
        actor,
        "model.promote",
        {"version": version, "previous": previous.version if previous is not None else None},
    )
    _commit(session, f"promote model {version}")
    if model_dir is not None:
        _follow_locally(session, version, Path(model_dir))
    return row


def rollback(session: Session, *, actor: str = "system", model_dir: Path | None = None) -> ModelVersion:
    """Reject the champion and promote the most recently promoted earlier version that still has its artifact.

    NotFoundError when there is no champion or nothing to roll back to.
    """
    current = champion(session)
    if current is None:
        raise NotFoundError("no champion model to roll back from (see `moderation models list`)")
    previous = session.scalars(
        select(ModelVersion)
        .where(ModelVersion.status == RETIRED, ModelVersion.promoted_at.is_not(None))
        .order_by(ModelVersion.promoted_at.desc())
        .limit(1)
    ).first()
    if previous is None:
        raise NotFoundError(f"nothing to roll back to: {current.version} is the only model ever promoted")
    current.status = REJECTED
    session.flush()
    previous.status = CHAMPION
    previous.promoted_at = datetime.now(UTC)
    _audit(session, actor, "model.rollback", {"version": previous.version, "rejected": current.version})
    _commit(session, f"roll back to model {previous.version}")
    if model_dir is not None:
        _follow_locally(session, previous.version, Path(model_dir))
    return previous


def _follow_locally(session: Session, version: str, model_dir: Path) -> None:
    fetch_artifact(session, version, model_dir)
    set_current(model_dir, version)


def _write_atomic(target: Path, payload: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)
        raise


def fetch_artifact(session: Session, version: str, model_dir: Path) -> bool:
    """Make sure `model_dir` holds `version`'s artifact and manifest, copying them from the database.

    Returns True when files were written, False when they were already there and intact.
    ModelIntegrityError when the stored bytes do not match the registered SHA-256 (nothing is written);
    NotFoundError when the version or its bytes are not in the database.
    """
    model_dir = Path(model_dir)
    row = get_version(session, version)
    artifact, manifest_file = artifact_path(model_dir, version), manifest_path(model_dir, version)
    if artifact.is_file() and manifest_file.is_file():
        with contextlib.suppress(OSError):
            if hashlib.sha256(artifact.read_bytes()).hexdigest() == row.sha256:
                return False
    stored = session.get(ModelArtifact, version)
    if stored is None:
        raise NotFoundError(f"model {version}: the database holds no artifact bytes for it (pruned?)")
    payload = bytes(stored.content)
    digest = hashlib.sha256(payload).hexdigest()
    if digest != row.sha256:
        raise ModelIntegrityError(
            f"model {version}: stored artifact SHA-256 is {digest}, the registry expects {row.sha256}; refusing it"
        )
    manifest = Manifest(**{k: v for k, v in row.manifest.items() if k in Manifest.__dataclass_fields__})
    if manifest.sha256 != row.sha256:
        raise ModelIntegrityError(f"model {version}: registered manifest and registry row disagree on the SHA-256")
    _write_atomic(artifact, payload)  # the artifact first: a manifest never points at a missing file
    _write_atomic(manifest_file, manifest.to_json().encode("utf-8"))
    return True


def prune(session: Session, model_dir: Path | None, keep: int, *, actor: str = "system") -> list[str]:
    """Delete the artifacts of all but the `keep` newest versions (the champion always stays).

    Removes the files in `model_dir` (when given) and the bytes in the database; the registry rows stay
    with status "pruned". Returns the pruned versions.
    """
    keep = max(1, int(keep))
    rows = [row for row in list_versions(session) if row.status != PRUNED]
    others = [row for row in rows if row.status != CHAMPION]  # newest first
    slots = keep - (len(rows) - len(others))  # the champion takes one of the `keep` places
    pruned: list[str] = []
    for row in others[max(0, slots) :]:
        row.status = PRUNED
        stored = session.get(ModelArtifact, row.version)
        if stored is not None:
            session.delete(stored)
        pruned.append(row.version)
    if pruned:
        _audit(session, actor, "model.prune", {"versions": pruned, "keep": keep})
        _commit(session, "prune old models")
    if model_dir is not None:
        for version in pruned:
            for path in (artifact_path(Path(model_dir), version), manifest_path(Path(model_dir), version)):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
    return pruned


def adopt_current(session: Session, model_dir: Path, *, actor: str = "system") -> ModelVersion | None:
    """When nothing was ever promoted, register `model_dir`'s CURRENT model and make it the champion.

    This lets a registry start from a model trained with `moderation train`. Returns the champion (None
    when there is neither a champion nor a current model).
    """
    found = champion(session)
    if found is not None:
        return found
    version = current_version(model_dir)
    if version is None:
        return None
    register(session, model_dir, version, actor=actor)
    return promote(session, version, actor=actor)


__all__ = [
    "adopt_current",
    "champion",
    "champion_version",
    "fetch_artifact",
    "get_version",
    "list_versions",
    "promote",
    "prune",
    "register",
    "rollback",
]
