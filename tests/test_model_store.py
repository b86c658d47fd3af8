"""The model store writes atomically, refuses altered or incompatible artifacts and stays inside its folder."""

from __future__ import annotations

import copy
import io
import json
import os

import pytest
from tiny_corpus import TINY_CORPUS

from moderation.comment import Comment
from moderation.core import model_store
from moderation.core.classifier import SpamModel, fit_model
from moderation.core.thresholds import Thresholds
from moderation.errors import ModelError, ModelIntegrityError, ModelNotFoundError

DATA = {"fingerprint": "ab12cd" + "0" * 58, "counts": {"total": 16, "spam": 8, "ham": 8}}
METRICS = {"oof": {"roc_auc": 0.99}}


class ExplodingModel(SpamModel):
    """A real model whose pickling fails halfway through the write."""

    def __reduce__(self):
        raise RuntimeError("pickling exploded")


@pytest.fixture(scope="module")
def spam_model():
    """A real SpamModel trained on the tiny inline corpus."""
    return fit_model(TINY_CORPUS, version="base", thresholds=Thresholds(hold=0.3, spam=0.7, discard=0.95)).model


def _versioned(model: SpamModel, version: str, cls: type = SpamModel) -> SpamModel:
    copied = copy.copy(model)
    copied.__class__ = cls
    copied.version = version
    return copied


@pytest.fixture
def model_dir(tmp_path):
    """An empty model folder."""
    return tmp_path / "models"


@pytest.fixture
def save(model_dir, spam_model):
    """Save the tiny model under a given version name into the model folder."""

    def _save(version="20261128-181500-ab12cd", **options):
        return model_store.save_model(model_dir, _versioned(spam_model, version), data=DATA, metrics=METRICS, **options)

    return _save


def test_save_writes_artifact_manifest_and_current(model_dir, save):
    """A save leaves the artifact, a manifest describing it and CURRENT naming it, and nothing else."""
    manifest = save()
    names = sorted(p.name for p in model_dir.iterdir())
    assert names == ["20261128-181500-ab12cd.joblib", "20261128-181500-ab12cd.manifest.json", "CURRENT"]
    stored = json.loads((model_dir / "20261128-181500-ab12cd.manifest.json").read_text())
    assert stored["sha256"] == manifest.sha256
    assert stored["data"] == DATA and stored["metrics"] == METRICS
    assert stored["thresholds"] == {"hold": 0.3, "spam": 0.7, "discard": 0.95}
    assert set(stored["libraries"]) == {"python", "scikit-learn", "numpy", "scipy", "joblib", "nltk", "moderation"}
    assert model_store.current_version(model_dir) == manifest.version


def test_round_trip_loads_the_same_model(model_dir, save, spam_model):
    """What was saved loads back equal, by explicit version or through CURRENT."""
    save()
    loaded = model_store.load_model(model_dir)
    assert isinstance(loaded, SpamModel) and loaded.version == "20261128-181500-ab12cd"
    assert loaded.thresholds == spam_model.thresholds
    comment = Comment("Check out my channel http://bit.ly/x", author_name="promo")
    assert loaded.score(comment).probability == pytest.approx(spam_model.score(comment).probability)
    assert model_store.load_model(model_dir, "20261128-181500-ab12cd").version == "20261128-181500-ab12cd"


def test_failed_pickling_leaves_no_partial_files(model_dir, save, spam_model):
    """When pickling raises midway, no artifact, manifest or temp file remains and CURRENT is unchanged."""
    save("v1")
    before = sorted(p.name for p in model_dir.iterdir())
    with pytest.raises(RuntimeError, match="pickling exploded"):
        model_store.save_model(model_dir, _versioned(spam_model, "v2", ExplodingModel), data=DATA, metrics=METRICS)
    assert sorted(p.name for p in model_dir.iterdir()) == before
    assert model_store.current_version(model_dir) == "v1"


def test_failed_manifest_write_removes_the_artifact(model_dir, spam_model):
    """A manifest that cannot be serialised takes its freshly written artifact with it."""
    with pytest.raises(TypeError):
        model_store.save_model(model_dir, _versioned(spam_model, "v1"), data={"bad": object()}, metrics=METRICS)
    assert list(model_dir.iterdir()) == []


def test_existing_version_is_never_overwritten(model_dir, save):
    """Saving a version that already exists fails instead of changing bytes under a manifest."""
    save("v1")
    with pytest.raises(ModelError, match="already exists"):
        save("v1")


def test_tampered_artifact_is_refused(model_dir, save):
    """Flipping one byte of the artifact makes loading fail on the hash, before unpickling."""
    save("v1")
    path = model_dir / "v1.joblib"
    payload = bytearray(path.read_bytes())
    payload[len(payload) // 2] ^= 0x01
    path.write_bytes(bytes(payload))
    with pytest.raises(ModelIntegrityError, match="SHA-256"):
        model_store.load_model(model_dir)


def test_mismatched_sklearn_version_is_refused(model_dir, save):
    """A manifest recording another scikit-learn minor release is refused, naming expected and found."""
    save("v1")
    path = model_dir / "v1.manifest.json"
    stored = json.loads(path.read_text())
    found = stored["libraries"]["scikit-learn"]
    stored["libraries"]["scikit-learn"] = "0.24.2"
    path.write_text(json.dumps(stored))
    with pytest.raises(ModelIntegrityError, match=rf"scikit-learn: expected 0\.24\.2 .*found {found}"):
        model_store.load_model(model_dir)


def test_sklearn_patch_release_is_accepted(model_dir, save):
    """Only scikit-learn's major.minor must match: another patch release still loads."""
    manifest = save("v1")
    installed = dict(manifest.libraries)
    major, minor, *_ = installed["scikit-learn"].split(".")
    installed["scikit-learn"] = f"{major}.{minor}.99"
    assert model_store.load_model(model_dir, installed=installed).version == "v1"


@pytest.mark.parametrize("version", ["../evil", "a/b", "..", "x..y", "/etc/passwd", "", "a\\b", ".hidden"])
def test_path_traversal_versions_are_refused(model_dir, version, save):
    """Version names that could leave the model folder are rejected before touching the disk."""
    save("v1")
    with pytest.raises(ModelNotFoundError, match="path separators"):
        model_store.load_model(model_dir, version)


def test_artifact_symlinked_outside_is_refused(model_dir, tmp_path, save):
    """An artifact that is a symlink to a file outside the model folder is not read."""
    manifest = save("v1")
    outside = tmp_path / "outside.joblib"
    os.replace(model_dir / "v1.joblib", outside)
    (model_dir / "v1.joblib").symlink_to(outside)
    with pytest.raises(ModelIntegrityError, match="outside the model directory"):
        model_store.load_model(model_dir, manifest.version)


def test_manifest_pointing_elsewhere_is_refused(model_dir, save):
    """A manifest whose artifact field names another file is refused."""
    save("v1")
    path = model_dir / "v1.manifest.json"
    stored = json.loads(path.read_text())
    stored["artifact"] = "../v1.joblib"
    path.write_text(json.dumps(stored))
    with pytest.raises(ModelIntegrityError, match="expected artifact"):
        model_store.load_model(model_dir)


def test_no_model_is_a_clear_not_found(model_dir, save):
    """An empty or missing folder, or an unknown version, raises ModelNotFoundError."""
    with pytest.raises(ModelNotFoundError, match="no trained model"):
        model_store.load_model(model_dir)
    save("v1")
    with pytest.raises(ModelNotFoundError, match="no model version v9"):
        model_store.load_model(model_dir, "v9")


def test_current_follows_set_current(model_dir, save):
    """CURRENT names the newest save unless set_current points it at another existing version."""
    save("v1")
    save("v2")
    assert model_store.current_version(model_dir) == "v2"
    model_store.set_current(model_dir, "v1")
    assert model_store.load_model(model_dir).version == "v1"
    with pytest.raises(ModelNotFoundError):
        model_store.set_current(model_dir, "v3")
    assert model_store.current_version(model_dir) == "v1"


def test_save_without_marking_current(model_dir, save):
    """make_current=False saves a candidate without promoting it."""
    save("v1")
    save("v2", make_current=False)
    assert model_store.current_version(model_dir) == "v1"


def test_list_manifests_skips_malformed(model_dir, save):
    """Listing returns every readable manifest and skips a broken one."""
    save("v1")
    save("v2")
    (model_dir / "broken.manifest.json").write_text("{not json")
    assert [m.version for m in model_store.list_manifests(model_dir)] == ["v1", "v2"]
    with pytest.raises(ModelIntegrityError, match="expected JSON"):
        model_store.read_manifest(model_dir, "broken")


def test_new_version_is_utc_time_plus_data_hash():
    """Version names read as UTC time and the first six hex digits of the data fingerprint."""
    from datetime import UTC, datetime

    when = datetime(2026, 11, 28, 18, 15, 0, tzinfo=UTC)
    assert model_store.new_version("ab12cdef99", now=when) == "20261128-181500-ab12cd"


def test_artifact_that_does_not_unpickle_is_a_clear_integrity_error(model_dir, save):
    """Bytes that match their manifest but are not a pickle of this code give a one-sentence refusal."""
    import hashlib

    save("v1")
    payload = b"not a pickle at all"
    (model_dir / "v1.joblib").write_bytes(payload)
    path = model_dir / "v1.manifest.json"
    stored = json.loads(path.read_text())
    stored["sha256"] = hashlib.sha256(payload).hexdigest()
    path.write_text(json.dumps(stored))
    with pytest.raises(ModelIntegrityError, match=r"could not be unpickled .*moderation train"):
        model_store.load_model(model_dir)


class _OtherFamily:
    """A model of another family, as earlier versions' `retrain` saved (versioned, but not a SpamModel)."""

    version = "v1"


def test_an_artifact_of_another_model_family_is_refused_with_retrain_advice(model_dir, save):
    """A hash-valid artifact holding something other than a SpamModel is refused, saying to retrain."""
    import hashlib

    import joblib

    save("v1")
    buffer = io.BytesIO()
    joblib.dump(_OtherFamily(), buffer)
    (model_dir / "v1.joblib").write_bytes(buffer.getvalue())
    path = model_dir / "v1.manifest.json"
    stored = json.loads(path.read_text())
    stored["sha256"] = hashlib.sha256(buffer.getvalue()).hexdigest()
    path.write_text(json.dumps(stored))
    with pytest.raises(ModelIntegrityError, match=r"expected a SpamModel, found a _OtherFamily.*moderation train"):
        model_store.load_model(model_dir)


def test_current_naming_a_bad_or_missing_version_is_refused(model_dir, save):
    """A CURRENT file that names a traversing or absent version is refused, not followed."""
    save("v1")
    (model_dir / "CURRENT").write_text("../../etc/passwd\n")
    with pytest.raises(ModelNotFoundError, match="path separators"):
        model_store.load_model(model_dir)
    (model_dir / "CURRENT").write_text("v7\n")
    with pytest.raises(ModelNotFoundError, match="no model version v7"):
        model_store.load_model(model_dir)


def test_model_with_signals_this_code_does_not_compute_is_refused_on_load(model_dir, spam_model):
    """An intact artifact whose features use a signal unknown to this code (newer code) is refused by name."""
    from moderation.core.features import SIGNAL_NAMES

    newer = copy.deepcopy(_versioned(spam_model, "v-newer"))
    newer.features.signal_names_ = (*SIGNAL_NAMES, "signal_from_the_future")
    model_store.save_model(model_dir, newer, data=DATA, metrics=METRICS)
    with pytest.raises(ModelIntegrityError, match=r"signal_from_the_future.*moderation train"):
        model_store.load_model(model_dir)
