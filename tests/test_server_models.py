"""The worker's ModelHolder: lazy load, reload on promotion, refusal of a damaged artifact, training on first serve."""

from __future__ import annotations

from moderation.core.model_store import artifact_path, save_model, set_current
from moderation.web.model_holder import ModelHolder
from moderation.web.serving import ensure_model


def test_empty_folder_means_no_model_with_a_reason(tmp_path):
    """With no trained model the holder gives None and says how to get one."""
    holder = ModelHolder(tmp_path, reload_seconds=0)
    assert holder.get() is None
    assert "no trained model" in holder.problem()


def test_promoted_version_is_picked_up_on_the_next_check(tmp_path, tiny_model):
    """After another version becomes current the holder serves it once loaded, the old one serving meanwhile."""
    save_model(tmp_path, tiny_model, data={}, metrics={})
    holder = ModelHolder(tmp_path, reload_seconds=0)
    assert holder.get().version == "tiny-1" and holder.problem() is None
    newer = replace_version(tiny_model, "tiny-2")
    save_model(tmp_path, newer, data={}, metrics={})
    assert holder.get().version == "tiny-1"  # still serving while tiny-2 loads on a thread
    holder.wait()
    assert holder.get().version == "tiny-2"


def test_damaged_promotion_is_refused_and_the_old_model_keeps_serving(tmp_path, tiny_model):
    """A current artifact that fails its hash check is not loaded; the previous model stays in use."""
    save_model(tmp_path, tiny_model, data={}, metrics={})
    holder = ModelHolder(tmp_path, reload_seconds=0)
    assert holder.get().version == "tiny-1"
    save_model(tmp_path, replace_version(tiny_model, "tiny-2"), data={}, metrics={}, make_current=False)
    artifact = artifact_path(tmp_path, "tiny-2")
    artifact.write_bytes(artifact.read_bytes()[:-10] + b"0123456789")
    set_current(tmp_path, "tiny-2")
    assert holder.get().version == "tiny-1"
    holder.wait()
    assert holder.get().version == "tiny-1"


def test_reload_interval_limits_how_often_the_folder_is_read(tmp_path, tiny_model):
    """Within the reload interval a newly promoted version is not looked for yet."""
    save_model(tmp_path, tiny_model, data={}, metrics={})
    holder = ModelHolder(tmp_path, reload_seconds=3600)
    assert holder.get().version == "tiny-1"
    save_model(tmp_path, replace_version(tiny_model, "tiny-2"), data={}, metrics={})
    assert holder.get().version == "tiny-1"


def test_ensure_model_trains_only_when_the_folder_has_none(tmp_path, tiny_model):
    """First serve trains nothing when a model exists (training itself is covered by the restart test)."""
    save_model(tmp_path, tiny_model, data={}, metrics={})
    assert ensure_model(tmp_path, None, progress=lambda _: None) is None


def replace_version(model, version: str):
    """A copy of `model` under another version name."""
    import copy

    twin = copy.copy(model)
    twin.version = version
    return twin
