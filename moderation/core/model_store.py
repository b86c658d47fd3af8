"""Versioned, verified model artifacts on disk.

A model directory holds, per version, `<version>.joblib` (the pickled `SpamModel`) and
`<version>.manifest.json` (who, when, with which libraries and data, how well, which thresholds, and
the artifact's SHA-256), plus a `CURRENT` file naming the version in use.

Every file is written to a temporary file in the same directory, flushed to disk and `os.replace`d into
place, so a reader never sees half a file; the manifest is written after the artifact and `CURRENT`
last, so a version is only visible once it is complete. joblib is pickle, and unpickling runs code:
`load_model` only reads from inside the model directory, and checks the artifact's hash and the library
versions against the manifest *before* unpickling anything.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import platform
import re
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import IO, Any

from moderation.core.classifier import SpamModel
from moderation.errors import ModelError, ModelIntegrityError, ModelNotFoundError

CURRENT_FILE = "CURRENT"
ARTIFACT_SUFFIX = ".joblib"
MANIFEST_SUFFIX = ".manifest.json"
MANIFEST_FORMAT = 1

# Distributions whose versions are recorded. The tuple says how many leading version components must
# match for a pickled model to be trusted: scikit-learn does not promise that estimators pickled by one
# minor release work in another (it warns, and internals do change), numpy 1 → 2 changed its pickled
# array internals, and a pickle from one Python minor may reference names another lacks. nltk and
# joblib are recorded for the record only: the tokenizer is our own module-level function. So is this
# package's own version: a model pickled by other code fails to unpickle with a clear ModelIntegrityError.
LIBRARIES: dict[str, int] = {"scikit-learn": 2, "numpy": 1, "scipy": 1, "joblib": 0, "nltk": 0, "moderation": 0}
PYTHON_COMPONENTS = 2

# A version is a plain file-name stem: letters, digits, dot, dash, underscore; no separators, no "..".
_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


@dataclass(frozen=True)
class Manifest:
    """What we know about one saved model, as stored in `<version>.manifest.json`."""

    version: str
    created: str  # ISO 8601, UTC
    libraries: dict[str, str]
    data: dict[str, Any]  # fingerprint, counts
    metrics: dict[str, Any]
    thresholds: dict[str, float]
    artifact: str  # file name inside the model directory
    sha256: str
    size_bytes: int
    format: int = MANIFEST_FORMAT
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        """The manifest as pretty, stable JSON text."""
        return json.dumps(asdict(self), indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str, *, source: str = "manifest") -> Manifest:
        """Parse manifest JSON, failing with ModelIntegrityError when fields are missing or mistyped."""
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelIntegrityError(f"{source}: expected JSON, found a parse error ({exc})") from exc
        if not isinstance(raw, dict):
            raise ModelIntegrityError(f"{source}: expected a JSON object, found {type(raw).__name__}")
        required = {
            "version": str,
            "created": str,
            "libraries": dict,
            "data": dict,
            "metrics": dict,
            "thresholds": dict,
            "artifact": str,
            "sha256": str,
            "size_bytes": int,
        }
        for name, kind in required.items():
            if not isinstance(raw.get(name), kind):
                found = type(raw.get(name)).__name__ if name in raw else "nothing"
                raise ModelIntegrityError(f"{source}: expected {name!r} to be {kind.__name__}, found {found}")
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in raw.items() if k in known})


def library_versions() -> dict[str, str]:
    """The versions of Python and of the libraries a pickled model depends on, in this process."""
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def new_version(data_fingerprint: str, *, now: datetime | None = None) -> str:
    """A version name: UTC time plus the first six hex digits of the data fingerprint."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    short = re.sub(r"[^0-9a-f]", "", data_fingerprint.lower())[:6] or "000000"
    return f"{moment:%Y%m%d-%H%M%S}-{short}"


def check_version_name(version: str) -> str:
    """Return `version` if it is a safe file-name stem, else raise ModelNotFoundError saying why."""
    if not isinstance(version, str) or not _VERSION_RE.match(version) or ".." in version:
        raise ModelNotFoundError(
            f"model version must be letters, digits, '.', '-' or '_' (no path separators or '..'), found {version!r}"
        )
    return version


def artifact_path(model_dir: Path, version: str) -> Path:
    """Where a version's artifact lives."""
    return Path(model_dir) / f"{check_version_name(version)}{ARTIFACT_SUFFIX}"


def manifest_path(model_dir: Path, version: str) -> Path:
    """Where a version's manifest lives."""
    return Path(model_dir) / f"{check_version_name(version)}{MANIFEST_SUFFIX}"


def _fsync_dir(directory: Path) -> None:
    """Flush a directory entry change (a rename) to disk where the platform allows it."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def _atomic_writer(target: Path, mode: str = "wb") -> Iterator[IO[Any]]:
    """Yield a temp file beside `target`; on success fsync and `os.replace` it, on failure delete it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_dir(target.parent)


def _write_text_atomic(target: Path, text: str) -> None:
    with _atomic_writer(target, "wb") as handle:
        handle.write(text.encode("utf-8"))


class _HashingWriter(io.RawIOBase):
    """A write-only file object that hashes and counts what passes through to `inner`."""

    def __init__(self, inner: IO[bytes]) -> None:
        self.inner = inner
        self.digest = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self.inner.write(chunk)
        self.digest.update(chunk)
        self.size += len(chunk)
        return len(chunk)


def save_model(
    model_dir: Path,
    model: Any,
    *,
    data: dict[str, Any],
    metrics: dict[str, Any],
    make_current: bool = True,
    compress: int = 3,
    extra: dict[str, Any] | None = None,
) -> Manifest:
    """Write `model` as `<version>.joblib` plus its manifest, atomically, and mark it current.

    The version is `model.version`. `data` should hold the training data's `fingerprint` and `counts`;
    `metrics` the evaluation figures. Raises ModelError if that version already exists (artifacts are
    immutable: a manifest must never describe different bytes than it did yesterday). If anything
    fails midway, no partial file is left and the previous CURRENT stays in force.
    """
    import joblib

    model_dir = Path(model_dir)
    version = check_version_name(getattr(model, "version", "") or "")
    artifact = artifact_path(model_dir, version)
    manifest_file = manifest_path(model_dir, version)
    if artifact.exists() or manifest_file.exists():
        raise ModelError(f"model version {version} already exists in {model_dir}; refusing to overwrite it")
    thresholds = getattr(model, "thresholds", None)
    threshold_values = {k: float(v) for k, v in asdict(thresholds).items()} if thresholds is not None else {}

    with _atomic_writer(artifact) as handle:
        hashing = _HashingWriter(handle)
        joblib.dump(model, hashing, compress=compress)
    try:
        manifest = Manifest(
            version=version,
            created=datetime.now(UTC).isoformat(timespec="seconds"),
            libraries=library_versions(),
            data=dict(data),
            metrics=dict(metrics),
            thresholds=threshold_values,
            artifact=artifact.name,
            sha256=hashing.digest.hexdigest(),
            size_bytes=hashing.size,
            extra=dict(extra or {}),
        )
        _write_text_atomic(manifest_file, manifest.to_json())
    except BaseException:
        # Without its manifest the artifact can never be loaded; do not leave it lying around.
        with contextlib.suppress(FileNotFoundError):
            artifact.unlink()
        raise
    if make_current:
        set_current(model_dir, version)
    return manifest


def current_version(model_dir: Path) -> str | None:
    """The version named in `CURRENT`, or None when there is none."""
    try:
        text = (Path(model_dir) / CURRENT_FILE).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return check_version_name(text) if text else None


def set_current(model_dir: Path, version: str) -> None:
    """Mark an existing version as the one in use (atomically); ModelNotFoundError if it has no manifest."""
    model_dir = Path(model_dir)
    if not manifest_path(model_dir, version).is_file():
        raise ModelNotFoundError(f"no model version {version} in {model_dir} (expected {version}{MANIFEST_SUFFIX})")
    _write_text_atomic(model_dir / CURRENT_FILE, version + "\n")


def read_manifest(model_dir: Path, version: str) -> Manifest:
    """Read one version's manifest; ModelNotFoundError if absent, ModelIntegrityError if malformed."""
    path = manifest_path(model_dir, version)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ModelNotFoundError(f"no model version {version} in {model_dir} (expected {path.name})") from exc
    manifest = Manifest.from_json(text, source=str(path))
    if manifest.version != version:
        raise ModelIntegrityError(f"{path}: expected version {version!r}, found {manifest.version!r}")
    return manifest


def list_manifests(model_dir: Path) -> list[Manifest]:
    """Every readable manifest in `model_dir`, oldest first. Unreadable or malformed ones are skipped."""
    found = []
    for path in sorted(Path(model_dir).glob(f"*{MANIFEST_SUFFIX}")):
        version = path.name[: -len(MANIFEST_SUFFIX)]
        try:
            found.append(read_manifest(model_dir, version))
        except (ModelNotFoundError, ModelIntegrityError, OSError):
            continue
    return sorted(found, key=lambda m: (m.created, m.version))


def _component(version: str, count: int) -> tuple[str, ...]:
    return tuple(version.split("+")[0].split(".")[:count])


def check_libraries(manifest: Manifest, installed: dict[str, str] | None = None) -> None:
    """Raise ModelIntegrityError naming expected vs found when a library version is incompatible."""
    installed = installed if installed is not None else library_versions()
    rules = {"python": PYTHON_COMPONENTS, **LIBRARIES}
    problems = []
    for name, count in rules.items():
        if count == 0:
            continue
        expected = manifest.libraries.get(name)
        found = installed.get(name, "absent")
        if expected is None:
            problems.append(f"{name}: manifest does not record a version, found {found}")
        elif _component(expected, count) != _component(found, count):
            precision = ".".join(["x"] * count)
            problems.append(f"{name}: expected {expected} (same {precision}), found {found}")
    if problems:
        raise ModelIntegrityError(
            f"model {manifest.version} was built with other library versions ({'; '.join(problems)}); "
            "retrain it with `moderation train`"
        )


def _read_inside(model_dir: Path, name: str) -> bytes:
    """Read a file by name, refusing anything that resolves outside the model directory (e.g. a symlink)."""
    root = Path(model_dir).resolve()
    path = (root / name).resolve()
    if not path.is_relative_to(root) or path.parent != root:
        raise ModelIntegrityError(f"artifact {name!r} resolves outside the model directory {root}")
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise ModelNotFoundError(f"model artifact {path} is missing (its manifest exists)") from exc


def load_model(model_dir: Path, version: str | None = None, *, installed: dict[str, str] | None = None) -> Any:
    """Load a saved model after checking its SHA-256 and library versions against the manifest.

    `version` None means the version named in CURRENT. Raises ModelNotFoundError when there is no such
    model, ModelIntegrityError when the artifact was altered or was built with incompatible libraries.
    Nothing is unpickled until both checks pass.
    """
    import joblib

    model_dir = Path(model_dir)
    if version is None:
        version = current_version(model_dir)
        if version is None:
            raise ModelNotFoundError(
                f"no trained model in {model_dir} (no {CURRENT_FILE} file); run `moderation train`"
            )
    manifest = read_manifest(model_dir, version)
    expected_name = artifact_path(model_dir, version).name
    if manifest.artifact != expected_name:
        raise ModelIntegrityError(
            f"manifest of {version}: expected artifact {expected_name!r}, found {manifest.artifact!r}"
        )
    payload = _read_inside(model_dir, manifest.artifact)
    digest = hashlib.sha256(payload).hexdigest()
    if digest != manifest.sha256:
        raise ModelIntegrityError(
            f"model {version}: artifact SHA-256 is {digest}, manifest expects {manifest.sha256}; "
            "the file was altered or damaged, refusing to load it"
        )
    check_libraries(manifest, installed)
    try:
        model = joblib.load(io.BytesIO(payload))
    except Exception as exc:  # hash-verified, so: pickled by code that has since changed (or was never ours)
        raise ModelIntegrityError(
            f"model {version}: artifact could not be unpickled by this code ({exc}); retrain it with `moderation train`"
        ) from exc
    if not isinstance(model, SpamModel):  # e.g. the hashed SGD family earlier versions trained
        raise ModelIntegrityError(
            f"model {version}: expected a SpamModel, found a {type(model).__name__} from a model family this "
            "version no longer serves; retrain it with `moderation train`"
        )
    if getattr(model, "version", None) != version:
        raise ModelIntegrityError(
            f"model {version}: expected the artifact to hold that version, found {getattr(model, 'version', None)!r}"
        )
    return model
