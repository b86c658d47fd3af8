"""`moderation retrain`: training set from every label source, promotion and refusal, dry run, lock, crash safety."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from learning_helpers import domain, new_site, save_and_register, store_labelled

from moderation.comment import Label
from moderation.core.model_store import current_version, list_manifests
from moderation.errors import StoreError
from moderation.learning.retrain import (
    EXIT_NOT_PROMOTED,
    EXIT_PROMOTED,
    Holdout,
    RetrainOptions,
    choose_holdout,
    retrain,
    retrain_lock,
    stored_examples,
)
from moderation.store import registry
from moderation.store.schema import LabelRecord

MODERATION = str(Path(sys.executable).parent / "moderation")
FAST = RetrainOptions(site_daily_cap=1e9)


@pytest.fixture
def store(champion_store):
    """The database with a promoted champion, plus one site; yields (engine, session, model_dir, site)."""
    engine, session, folder = champion_store
    return engine, session, folder, new_site(session)


def test_labels_from_every_source_reach_the_training_set(store):
    """Moderator, feedback and Akismet labels are read; test checks are not; the latest label of a comment wins."""
    _engine, session, _folder, site = store
    store_labelled(session, site, [("moderated spam text", Label.SPAM)], source="moderator")
    store_labelled(session, site, [("feedback ham text", Label.HAM)], source="feedback")
    store_labelled(session, site, [("akismet spam text", Label.SPAM)], source="akismet")
    store_labelled(session, site, [("a test check", Label.SPAM)], is_test=True)
    (changed,) = store_labelled(session, site, [("first spam then ham", Label.SPAM)])
    session.add(LabelRecord(comment_id=changed, label="ham", source="moderator", actor="t"))
    session.commit()
    # A second site confirms every phrase, so each label keeps its full source weight.
    other = new_site(session, "other")
    confirmations = [("moderated spam text", Label.SPAM), ("feedback ham text", Label.HAM)]
    confirmations += [("akismet spam text", Label.SPAM), ("first spam then ham", Label.HAM)]
    store_labelled(session, other, confirmations, source="moderator")

    stats: dict[str, int] = {}
    seen = stored_examples(session, held=Holdout(), options=FAST, stats=stats)
    got = {(e.group, e.comment.content): (e.label, e.weight) for e in seen if e.group == f"site-{site.id}"}
    assert got == {
        (f"site-{site.id}", "moderated spam text"): (Label.SPAM, 1.0),
        (f"site-{site.id}", "feedback ham text"): (Label.HAM, 0.5),
        (f"site-{site.id}", "akismet spam text"): (Label.SPAM, 0.5),
        (f"site-{site.id}", "first spam then ham"): (Label.HAM, 1.0),
    }


def test_retrain_with_no_labels_trains_exactly_what_train_trains(store, tiny_corpus, tmp_path, monkeypatch):
    """One model family: with no stored labels, retrain's challenger is `moderation train`'s model, weight for weight"""
    from moderation.core.model_store import load_model
    from moderation.core.training import train_and_save
    from moderation.learning import retrain as retrain_module

    engine, _session, folder, _site = store
    monkeypatch.setattr(retrain_module, "build_training_set", lambda _data_dir: list(tiny_corpus))
    trained = load_model(tmp_path / "trained", train_and_save(tmp_path / "trained", examples=tiny_corpus).version)
    challenger = load_model(folder, retrain(engine, folder, None, RetrainOptions(force=True)).challenger)
    assert type(challenger) is type(trained)
    assert list(challenger.features.word_terms_) == list(trained.features.word_terms_)
    assert list(challenger.coefficients) == list(trained.coefficients)
    assert challenger.calibration == trained.calibration and challenger.thresholds == trained.thresholds


def test_a_label_no_other_site_confirms_stays_out_of_the_global_model(store):
    """A single site's labels teach only its own model: their global training weight is 0, so they are left out."""
    _engine, session, _folder, site = store
    store_labelled(session, site, [("only this site says so", Label.SPAM)], source="moderator")
    stats: dict[str, int] = {}
    assert stored_examples(session, held=Holdout(), options=FAST, stats=stats) == []


def test_a_better_challenger_is_promoted_and_reloads_nothing_by_itself(store):
    """New-domain labels make a challenger that beats the starter champion on recent labels: promoted."""
    engine, session, folder, site = store
    store_labelled(session, site, domain(150, 150))
    result = retrain(engine, folder, None, FAST)
    assert result.promoted and result.exit_code == EXIT_PROMOTED, result.reason
    assert result.comparison["roc_auc"]["challenger"] >= result.comparison["roc_auc"]["champion"]
    assert registry.champion(session).version == result.challenger == current_version(folder)
    manifest = registry.get_version(session, result.challenger).manifest
    assert manifest["metrics"]["comparison"]["recall_at_1pct_fpr"]["challenger"] >= 0.9
    assert result.holdout["n"] == 60
    assert result.training["stored"] + result.training["stored_duplicates"] == 240


def test_a_worse_challenger_is_refused_and_dry_run_changes_nothing(store):
    """Contradictory older labels make a worse challenger: kept as a candidate; a dry run touches nothing."""
    engine, session, folder, site = store
    good = domain(150, 150, seed=1)
    store_labelled(session, site, good)
    first = retrain(engine, folder, None, FAST)
    assert first.promoted
    flipped = [
        (e.comment.content, Label.HAM if e.label is Label.SPAM else Label.SPAM) for e in domain(300, 300, seed=2)
    ]
    store_labelled(session, site, flipped)
    store_labelled(session, site, domain(60, 60, seed=3))

    before = ({m.version for m in list_manifests(folder)}, [r.version for r in registry.list_versions(session)])
    dry = retrain(engine, folder, None, FAST.replace(dry_run=True))
    assert dry.exit_code == EXIT_NOT_PROMOTED and not dry.promoted, dry.comparison
    assert before == ({m.version for m in list_manifests(folder)}, [r.version for r in registry.list_versions(session)])

    refused = retrain(engine, folder, None, FAST)
    assert refused.exit_code == EXIT_NOT_PROMOTED and "worse" in refused.reason
    assert registry.champion(session).version == first.challenger
    assert registry.get_version(session, refused.challenger).status == "candidate"

    forced = retrain(engine, folder, None, FAST.replace(force=True))
    assert forced.promoted and registry.champion(session).version == forced.challenger


FRIENDLY = ("Thanks for sharing", "Lovely photos", "Great read", "Happy to help", "See you on Sunday")


def _friendly_flood(n: int) -> list[tuple[str, Label]]:
    return [(f"{FRIENDLY[i % len(FRIENDLY)]}, friend number {i}!", Label.SPAM) for i in range(n)]


def test_one_key_reporting_friendly_text_as_spam_cannot_veto_a_promotion(store):
    """300 submit-spam reports of friendly text from one key, the newest labels of all: the challenger is compared
    on the other site's spam and ham and promoted; the output says what was held."""
    engine, session, folder, site = store
    store_labelled(session, site, domain(100, 100))
    flooder = new_site(session, "flooder")
    store_labelled(session, flooder, _friendly_flood(300), source="akismet")

    result = retrain(engine, folder, None, FAST)
    assert result.exit_code == EXIT_PROMOTED and result.promoted, result.reason
    assert "not compared" not in result.reason
    held = result.holdout
    assert held["sites"] == {str(site.id): {"spam": 20, "ham": 20}} and (held["spam"], held["ham"]) == (20, 20)
    assert held["left_out"] == {str(flooder.id): {"spam": 300, "ham": 0}}


def test_the_holdout_is_shared_among_sites_and_left_out_of_every_fit(store):
    """A site with most of the labels gives no more than its share; held-out ids reach neither the global set nor
    any site model."""
    from moderation.learning.site_learning import site_examples

    _engine, session, _folder, site = store
    small, other = new_site(session, "small"), new_site(session, "other")
    store_labelled(session, site, domain(400, 400, seed=4))
    store_labelled(session, small, domain(10, 15, seed=5))
    store_labelled(session, other, domain(40, 60, seed=6))

    held = choose_holdout(session, 120)
    assert held.sites[small.id] == (2, 3)  # a fifth of each class: all it can give
    assert held.sites[other.id] == (8, 12)
    assert held.sites[site.id] == (48, 47)  # the rest, shared between its classes
    assert len(held.label_ids) == 120
    stats: dict[str, int] = {}
    trained = stored_examples(session, held=held, options=FAST.replace(site_daily_cap=1e9), stats=stats)
    assert stats["stored"] + stats["stored_duplicates"] == 925 - 120
    assert trained == [] or all(e.group.startswith("site-") for e in trained)
    for site_id in (site.id, small.id, other.id):
        fitted = site_examples(session, site_id, limit=5000, exclude=held.label_ids)
        assert not {e.label_id for e in fitted} & held.label_ids
        assert len(fitted) == {site.id: 800, small.id: 25, other.id: 100}[site_id] - sum(held.sites[site_id])


def test_a_holdout_without_both_classes_says_so_and_does_not_veto(store):
    """Only one class among the labels: nothing is held out, the comparison is skipped and says why."""
    engine, session, folder, site = store
    store_labelled(session, site, _friendly_flood(60), source="akismet")
    result = retrain(engine, folder, None, FAST)
    assert result.promoted and result.holdout["n"] == 0
    assert "not compared" in result.reason and "0 spam and 0 ham" in result.reason


def test_concurrent_retrains_are_serialised(store):
    """While one retrain holds the lock another waits, and gives up with a clear error after its timeout."""
    engine, _session, folder, _site = store
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with retrain_lock(engine, 5, folder):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait(5)
    try:
        with pytest.raises(StoreError, match="another retrain"), retrain_lock(engine, 0.5, folder):
            pass
    finally:
        release.set()
        thread.join()
    with retrain_lock(engine, 1, folder):
        pass


def _limit_file_size() -> None:
    """In the child: files may not grow past 150 kB, and a write beyond fails (EFBIG) instead of killing it."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (150_000, 150_000))


def _cli_store(tmp_path, champion_model, labels) -> tuple[str, Path, dict[str, str]]:
    """A SQLite file with `champion_model` promoted and one site's `labels`: (URL, model folder, CLI environment)."""
    from moderation.store import db

    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    folder = tmp_path / "models"
    with db.make_sessionmaker(engine)() as session:
        save_and_register(session, folder, champion_model, promote=True)
        store_labelled(session, new_site(session), labels)
    engine.dispose()
    env = {**os.environ, "MODERATION_DATABASE_URL": url, "MODERATION_MODEL_DIR": str(folder), "MODERATION_DATA_DIR": ""}
    return url, folder, env


def test_a_full_disk_mid_retrain_leaves_the_champion_serving(tmp_path, champion_model):
    """`moderation retrain` that cannot write its files exits 1; champion, CURRENT and the folder are unchanged."""
    from moderation.store import db

    url, folder, env = _cli_store(tmp_path, champion_model, domain(100, 100))
    files = sorted(p.name for p in folder.iterdir())
    done = subprocess.run(
        [MODERATION, "retrain", "--force"],
        env={**env, "TMPDIR": str(tmp_path)},
        capture_output=True,
        text=True,
        preexec_fn=_limit_file_size,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Error:" in done.stderr and "Traceback" not in done.stderr
    assert sorted(p.name for p in folder.iterdir()) == files
    engine = db.make_engine(url)
    with db.make_sessionmaker(engine)() as session:
        assert registry.champion(session).version == "champion-0"
        assert [r.version for r in registry.list_versions(session)] == ["champion-0"]
    assert current_version(folder) == "champion-0"
    engine.dispose()


def test_cli_exit_codes_and_comparison(tmp_path, champion_model):
    """The CLI prints the comparison; 0 when promoted, 3 when the dry run would not promote."""
    _url, _folder, env = _cli_store(tmp_path, champion_model, domain(100, 100))
    done = subprocess.run([MODERATION, "retrain"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "recall_at_1pct_fpr" in done.stdout and "promoted" in done.stdout and "fold" in done.stderr
    listed = subprocess.run([MODERATION, "models", "list"], env=env, capture_output=True, text=True)
    assert "champion" in listed.stdout and "retired" in listed.stdout
    back = subprocess.run([MODERATION, "models", "rollback"], env=env, capture_output=True, text=True)
    assert back.returncode == 0 and "champion-0" in back.stdout
    bad = subprocess.run([MODERATION, "models", "promote", "nope"], env=env, capture_output=True, text=True)
    assert bad.returncode == 1 and "nope" in bad.stderr


def test_cli_sites_only(tmp_path, champion_model):
    """`retrain --sites-only` promotes the champion with refitted site models; with no champion: one-line error."""
    bare = {**os.environ, "MODERATION_DATABASE_URL": f"sqlite:///{tmp_path / 'bare.sqlite3'}"}
    bare["MODERATION_MODEL_DIR"] = str(tmp_path / "none")
    missing = subprocess.run([MODERATION, "retrain", "--sites-only"], env=bare, capture_output=True, text=True)
    assert missing.returncode == 1 and "run `moderation train` first" in missing.stderr
    assert "Traceback" not in missing.stderr
    _url, _folder, env = _cli_store(tmp_path, champion_model, domain(30, 30))
    done = subprocess.run([MODERATION, "retrain", "--sites-only"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "1 site models" in done.stdout and "champion-0" in done.stdout
    listed = subprocess.run([MODERATION, "models", "list"], env=env, capture_output=True, text=True)
    assert "retired" in listed.stdout


def test_metrics_without_a_value_are_stored_as_null():
    """NaN and infinite metrics (a one-class held-out slice) become JSON null, which PostgreSQL accepts."""
    from moderation.learning.retrain import json_safe

    found = json_safe({"roc_auc": {"challenger": float("nan"), "champion": 0.9}, "counts": [float("inf"), 3]})
    assert found == {"roc_auc": {"challenger": None, "champion": 0.9}, "counts": [None, 3]}
