"""The model registry in the database: register, promote, roll back, prune, fetch artifacts verified."""

from __future__ import annotations

import pytest
from learning_helpers import save_and_register, starter_model

from moderation.core.model_store import artifact_path, current_version, load_model
from moderation.errors import ModelIntegrityError, NotFoundError
from moderation.store import registry
from moderation.store.schema import ModelArtifact


@pytest.fixture(scope="module")
def three_models():
    """Three small models with distinct versions (trained once for the module)."""
    return [starter_model(f"m{i}", random_state=i) for i in range(3)]


def test_promote_and_rollback_move_the_champion(db_session, tmp_path, three_models):
    """Promoting retires the old champion; rollback rejects the champion and restores the previous one."""
    folder = tmp_path / "models"
    for model in three_models:
        save_and_register(db_session, folder, model, promote=True)
    assert registry.champion(db_session).version == "m2"
    assert {r.version: r.status for r in registry.list_versions(db_session)} == {
        "m0": "retired",
        "m1": "retired",
        "m2": "champion",
    }
    assert registry.rollback(db_session, model_dir=folder).version == "m1"
    assert current_version(folder) == "m1"
    assert registry.rollback(db_session).version == "m0"  # m2 was rejected: not a rollback target
    with pytest.raises(NotFoundError):
        registry.rollback(db_session)
    assert registry.champion_version(db_session.get_bind()) == "m0"


def test_unknown_version_is_a_clear_error(db_session):
    """Promoting a version that was never registered names it."""
    with pytest.raises(NotFoundError, match="nope"):
        registry.promote(db_session, "nope")


def test_fetch_writes_a_verified_copy_and_refuses_altered_bytes(db_session, tmp_path, three_models):
    """Another host fetches the artifact from the database; altered stored bytes are refused before writing."""
    save_and_register(db_session, tmp_path / "a", three_models[0], promote=True)
    other = tmp_path / "b"
    assert registry.fetch_artifact(db_session, "m0", other) is True
    assert load_model(other, "m0").version == "m0"
    assert registry.fetch_artifact(db_session, "m0", other) is False

    stored = db_session.get(ModelArtifact, "m0")
    stored.content = bytes(stored.content[:-10]) + b"0123456789"
    db_session.commit()
    third = tmp_path / "c"
    with pytest.raises(ModelIntegrityError, match="SHA-256"):
        registry.fetch_artifact(db_session, "m0", third)
    assert not artifact_path(third, "m0").exists()


def test_prune_keeps_the_newest_and_the_champion(db_session, tmp_path, three_models):
    """Pruning to one artifact keeps the (old) champion and deletes the others' files and bytes."""
    folder = tmp_path / "models"
    save_and_register(db_session, folder, three_models[0], promote=True)
    for model in three_models[1:]:
        save_and_register(db_session, folder, model, promote=False)
    assert sorted(registry.prune(db_session, folder, keep=2)) == ["m1"]
    assert sorted(registry.prune(db_session, folder, keep=1)) == ["m2"]
    assert artifact_path(folder, "m0").exists() and not artifact_path(folder, "m2").exists()
    assert db_session.get(ModelArtifact, "m2") is None
    with pytest.raises(ModelIntegrityError, match="pruned"):
        registry.promote(db_session, "m2")


def test_adopt_current_registers_a_trained_model_as_champion(db_session, tmp_path, three_models):
    """A model made current by `moderation train` becomes the first champion."""
    from moderation.core.model_store import save_model

    folder = tmp_path / "models"
    save_model(folder, three_models[1], data={}, metrics={})
    assert registry.adopt_current(db_session, folder).version == "m1"
    assert registry.champion(db_session).status == "champion"
