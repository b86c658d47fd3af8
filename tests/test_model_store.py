"""The model store writes atomically, refuses altered or incompatible artifacts and stays inside its folder."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import pytest

from moderation import model_store
from moderation.errors import ModelError, ModelIntegrityError, ModelNotFoundError

DATA = {"fingerprint": "ab12cd" + "0" * 58, "counts": {"total": 16, "spam": 8, "ham": 8}}
METRICS = {"oof": {"roc_auc": 0.99}}


@dataclass(frozen=True)
class StandInThresholds:
    hold: float = 0.3
    spam: float = 0.7
    discard: float = 0.95


@dataclass
class StandInModel:
    """Until the classifier lands: something picklable with a version and thresholds."""

    version: str
    thresholds: StandInThresholds = StandInThresholds()


class Unpicklable(StandInModel):
    """A model whose pickling fails halfway through the write."""

    def __reduce__(self):
        raise RuntimeError("pickling exploded")


@pytest.fixture
def model_dir(tmp_path):
    """An empty model folder."""
    return tmp_path / "models"


def _save(model_dir, version="20261128-181500-ab12cd"):
    return model_store.save_model(model_dir, StandInModel(version), data=DATA, metrics=METRICS)


def test_save_writes_artifact_manifest_and_current(model_dir):
    """A save leaves the artifact, a manifest describing it and CURRENT naming it, and nothing else."""
    manifest = _save(model_dir)
    names = sorted(p.name for p in model_dir.iterdir())
    assert names == ["20261128-181500-ab12cd.joblib", "20261128-181500-ab12cd.manifest.json", "CURRENT"]
    stored = json.loads((model_dir / "20261128-181500-ab12cd.manifest.json").read_text())
    assert stored["sha256"] == manifest.sha256
    assert stored["data"] == DATA and stored["metrics"] == METRICS
    assert stored["thresholds"] == {"hold": 0.3, "spam": 0.7, "discard": 0.95}
    assert set(stored["libraries"]) == {"python", "scikit-learn", "numpy", "scipy", "joblib", "nltk"}
    assert model_store.current_version(model_dir) == manifest.version


def test_round_trip_loads_the_same_model(model_dir):
    """What was saved loads back equal, by explicit version or through CURRENT."""
    _save(model_dir)
    assert model_store.load_model(model_dir) == StandInModel("20261128-181500-ab12cd")
    assert model_store.load_model(model_dir, "20261128-181500-ab12cd").version == "20261128-181500-ab12cd"


def test_failed_pickling_leaves_no_partial_files(model_dir):
    """When pickling raises midway, no artifact, manifest or temp file remains and CURRENT is unchanged."""
    _save(model_dir, "v1")
    before = sorted(p.name for p in model_dir.iterdir())
    with pytest.raises(RuntimeError, match="pickling exploded"):
        model_store.save_model(model_dir, Unpicklable("v2"), data=DATA, metrics=METRICS)
    assert sorted(p.name for p in model_dir.iterdir()) == before
    assert model_store.current_version(model_dir) == "v1"


def test_failed_manifest_write_removes_the_artifact(model_dir):
    """A manifest that cannot be serialised takes its freshly written artifact with it."""
    with pytest.raises(TypeError):
        model_store.save_model(model_dir, StandInModel("v1"), data={"bad": object()}, metrics=METRICS)
    assert list(model_dir.iterdir()) == []


def test_existing_version_is_never_overwritten(model_dir):
    """Saving a version that already exists fails instead of changing bytes under a manifest."""
    _save(model_dir, "v1")
    with pytest.raises(ModelError, match="already exists"):
        _save(model_dir, "v1")


def test_tampered_artifact_is_refused(model_dir):
    """Flipping one byte of the artifact makes loading fail on the hash, before unpickling."""
    _save(model_dir, "v1")
    path = model_dir / "v1.joblib"
    payload = bytearray(path.read_bytes())
    payload[len(payload) // 2] ^= 0x01
    path.write_bytes(bytes(payload))
    with pytest.raises(ModelIntegrityError, match="SHA-256"):
        model_store.load_model(model_dir)


def test_mismatched_sklearn_version_is_refused(model_dir):
    """A manifest recording another scikit-learn minor release is refused, naming expected and found."""
    _save(model_dir, "v1")
    path = model_dir / "v1.manifest.json"
    stored = json.loads(path.read_text())
    found = stored["libraries"]["scikit-learn"]
    stored["libraries"]["scikit-learn"] = "0.24.2"
    path.write_text(json.dumps(stored))
    with pytest.raises(ModelIntegrityError, match=rf"scikit-learn: expected 0\.24\.2 .*found {found}"):
        model_store.load_model(model_dir)


def test_sklearn_patch_release_is_accepted(model_dir):
    """Only scikit-learn's major.minor must match: another patch release still loads."""
    manifest = _save(model_dir, "v1")
    installed = dict(manifest.libraries)
    major, minor, *_ = installed["scikit-learn"].split(".")
    installed["scikit-learn"] = f"{major}.{minor}.99"
    assert model_store.load_model(model_dir, installed=installed).version == "v1"


@pytest.mark.parametrize("version", ["../evil", "a/b", "..", "x..y", "/etc/passwd", "", "a\\b", ".hidden"])
def test_path_traversal_versions_are_refused(model_dir, version):
    """Version names that could leave the model folder are rejected before touching the disk."""
    _save(model_dir, "v1")
    with pytest.raises(ModelNotFoundError, match="path separators"):
        model_store.load_model(model_dir, version)


def test_artifact_symlinked_outside_is_refused(model_dir, tmp_path):
    """An artifact that is a symlink to a file outside the model folder is not read."""
    manifest = _save(model_dir, "v1")
    outside = tmp_path / "outside.joblib"
    os.replace(model_dir / "v1.joblib", outside)
    (model_dir / "v1.joblib").symlink_to(outside)
    with pytest.raises(ModelIntegrityError, match="outside the model directory"):
        model_store.load_model(model_dir, manifest.version)


def test_manifest_pointing_elsewhere_is_refused(model_dir):
    """A manifest whose artifact field names another file is refused."""
    _save(model_dir, "v1")
    path = model_dir / "v1.manifest.json"
    stored = json.loads(path.read_text())
    stored["artifact"] = "../v1.joblib"
    path.write_text(json.dumps(stored))
    with pytest.raises(ModelIntegrityError, match="expected artifact"):
        model_store.load_model(model_dir)


def test_no_model_is_a_clear_not_found(model_dir):
    """An empty or missing folder, or an unknown version, raises ModelNotFoundError."""
    with pytest.raises(ModelNotFoundError, match="no trained model"):
        model_store.load_model(model_dir)
    _save(model_dir, "v1")
    with pytest.raises(ModelNotFoundError, match="no model version v9"):
        model_store.load_model(model_dir, "v9")


def test_current_follows_set_current(model_dir):
    """CURRENT names the newest save unless set_current points it at another existing version."""
    _save(model_dir, "v1")
    _save(model_dir, "v2")
    assert model_store.current_version(model_dir) == "v2"
    model_store.set_current(model_dir, "v1")
    assert model_store.load_model(model_dir).version == "v1"
    with pytest.raises(ModelNotFoundError):
        model_store.set_current(model_dir, "v3")
    assert model_store.current_version(model_dir) == "v1"


def test_save_without_marking_current(model_dir):
    """make_current=False saves a candidate without promoting it."""
    _save(model_dir, "v1")
    model_store.save_model(model_dir, StandInModel("v2"), data=DATA, metrics=METRICS, make_current=False)
    assert model_store.current_version(model_dir) == "v1"


def test_list_manifests_skips_malformed(model_dir):
    """Listing returns every readable manifest and skips a broken one."""
    _save(model_dir, "v1")
    _save(model_dir, "v2")
    (model_dir / "broken.manifest.json").write_text("{not json")
    assert [m.version for m in model_store.list_manifests(model_dir)] == ["v1", "v2"]
    with pytest.raises(ModelIntegrityError, match="expected JSON"):
        model_store.read_manifest(model_dir, "broken")


def test_new_version_is_utc_time_plus_data_hash():
    """Version names read as UTC time and the first six hex digits of the data fingerprint."""
    from datetime import UTC, datetime

    when = datetime(2026, 11, 28, 18, 15, 0, tzinfo=UTC)
    assert model_store.new_version("ab12cdef99", now=when) == "20261128-181500-ab12cd"
