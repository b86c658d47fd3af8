"""Training picks thresholds from held-out ham scores, keeps groups together and saves a loadable model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moderation.comment import Comment, Label, LabelledComment
from moderation.core import folds, model_store, thresholds, training


def _example(text: str, label: Label, source: str = "web", group: str = "") -> LabelledComment:
    return LabelledComment(Comment(content=text), label, source, group)


_SMS_AND_VIDEOS = [
    _example("a", Label.SPAM, "sms", "sms"),
    _example("b", Label.HAM, "sms", "sms"),
    _example("c", Label.HAM, "youtube", "Psy"),
    _example("d", Label.SPAM, "youtube", "Psy"),
    _example("e", Label.HAM, "youtube", "Eminem"),
]


def test_threshold_blocks_at_most_the_rate_of_ham():
    """With ham scores 0.00…0.99, a 1% rate lets only the single highest ham through."""
    ham = np.arange(100) / 100
    t = thresholds.threshold_for_ham_rate(ham, 0.01)
    assert 0.98 < t <= 0.99
    assert np.mean(ham >= t) == pytest.approx(0.01)


def test_tied_ham_scores_stay_below_the_threshold():
    """When the cut falls inside a run of equal scores, the whole run stays below it."""
    ham = np.array([0.2] * 50 + [0.7] * 50)
    t = thresholds.threshold_for_ham_rate(ham, 0.1)
    assert t > 0.7
    assert np.mean(ham >= t) == 0.0


def test_threshold_never_exceeds_one():
    """Ham scored exactly 1.0 cannot be excluded: the threshold caps at 1.0 (Thresholds' upper bound)."""
    assert thresholds.threshold_for_ham_rate(np.array([1.0, 0.2]), 0.01) == 1.0


def test_no_ham_gives_a_neutral_threshold():
    """Without ham to measure, the threshold is the neutral 0.5."""
    assert thresholds.threshold_for_ham_rate(np.array([]), 0.01) == 0.5


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0, 0.999999, allow_nan=False), min_size=1, max_size=300),
    st.sampled_from([0.001, 0.01, 0.02, 0.05, 0.5]),
)
def test_threshold_is_the_lowest_that_meets_the_rate(scores, rate):
    """The chosen threshold meets the rate, and the next ham score down would break it."""
    ham = np.array(scores)
    t = thresholds.threshold_for_ham_rate(ham, rate)
    assert np.mean(ham >= t) <= rate + 1e-12
    below = ham[ham < t]
    if below.size:
        assert np.mean(ham >= below.max()) > rate


def test_thresholds_follow_the_documented_rates():
    """hold, spam and discard leave at most 2%, 1% and 0.1% of held-out ham at or above them."""
    rng = np.random.default_rng(0)
    ham = rng.beta(1, 8, size=5000)
    t = thresholds.choose_thresholds(ham)
    assert t.hold <= t.spam <= t.discard
    assert np.mean(ham >= t.hold) <= 0.02
    assert np.mean(ham >= t.spam) <= 0.01
    assert np.mean(ham >= t.discard) <= 0.001
    assert np.mean(ham >= t.hold) > 0.015  # not needlessly strict


def test_blocking_thresholds_spare_the_starters_risky_ham_but_it_does_not_place_hold():
    """Each source with enough ham must meet the rate; the starter corpus's risky ham bounds spam and
    discard (so it is not blocked) but not hold, which ordinary ham places."""
    lax = np.linspace(0, 0.3, 1000)
    strict = np.linspace(0, 0.4, 200)
    starter = np.full(150, 0.999)
    t = thresholds.choose_thresholds({"sms": lax, "youtube": strict, "starter": starter})
    assert np.mean(starter >= t.spam) <= 0.01
    assert np.mean(strict >= t.hold) <= 0.02 and t.hold < 0.4
    only_starter = thresholds.choose_thresholds({"starter": starter})
    assert only_starter.spam > 0.999


def test_a_comment_more_likely_ham_is_never_blocked():
    """However low held-out ham scores, auto-spam starts at 0.5 at the lowest, and hold never above it."""
    t = thresholds.choose_thresholds({"sms": np.zeros(500)})
    assert t.spam == 0.5 and t.discard >= 0.5 and t.hold <= 0.5


def _shifted_groups(shift: float) -> tuple[np.ndarray, np.ndarray]:
    """Four groups of 200 ham scores 0…0.5; the last group's ham scores `shift` higher (a harder video)."""
    base = np.arange(200) / 400
    scores = np.concatenate([base, base, base, base + shift])
    return scores, np.repeat(np.array(["a", "b", "c", "d"]), 200)


def test_group_validated_rate_shrinks_when_an_unseen_group_would_be_over_blocked():
    """A group whose ham runs high would see more than the rate from thresholds read off the others, so the
    rate shrinks until, each group held out in turn, at most 1% of all ham is blocked."""
    scores, groups = _shifted_groups(0.02)
    share = thresholds.group_validated_rate(scores, groups, 0.01)
    assert share < 0.01
    blocked = sum(
        np.sum(scores[groups == g] >= thresholds.threshold_for_ham_rate(scores[groups != g], share)) for g in "abcd"
    )
    assert blocked <= 0.01 * len(scores)
    plain = thresholds.threshold_for_ham_rate(scores, 0.01)
    assert thresholds.threshold_for_ham_rate(scores, share) > plain


def test_group_validated_rate_keeps_the_rate_for_alike_or_ungrouped_ham():
    """Groups that score alike keep the full rate; so do ham without groups (one score per group) or too few groups."""
    scores, groups = _shifted_groups(0.0)
    assert thresholds.group_validated_rate(scores, groups, 0.01) == 0.01
    shifted, _ = _shifted_groups(0.02)
    assert thresholds.group_validated_rate(shifted, np.arange(len(shifted)).astype(str), 0.01) == 0.01
    two = np.repeat(np.array(["a", "b"]), 400)
    assert thresholds.group_validated_rate(shifted, two, 0.01) == 0.01


def test_thresholds_for_many_rates_match_one_at_a_time():
    """The vectorised thresholds are exactly the single-rate ones, including rates that allow every ham."""
    rng = np.random.default_rng(1)
    ham = rng.random(137)
    rates = np.array([0.0, 0.001, 0.01, 0.2, 1.0])
    many = thresholds.thresholds_for_ham_rates(ham, rates)
    assert list(many) == [thresholds.threshold_for_ham_rate(ham, r) for r in rates]


def test_grouped_sources_choose_stricter_thresholds():
    """With groups given, a grouped source's thresholds meet each rate on its groups held out in turn;
    without them (or for another source) the plain rates apply."""
    scores, groups = _shifted_groups(0.02)
    plain = thresholds.choose_thresholds({"youtube": scores})
    grouped = thresholds.choose_thresholds({"youtube": scores}, groups={"youtube": groups})
    assert grouped.spam > plain.spam
    assert grouped.hold >= plain.hold
    assert thresholds.choose_thresholds({"youtube": scores}, groups={"sms": groups}) == plain


def test_held_out_groups_follow_the_ham_scores():
    """`ham_groups_by_source` lines up with `ham_scores_by_source`: same sources, same ham, same order."""
    scores = thresholds.ham_scores_by_source(_SMS_AND_VIDEOS, np.array([0.5, 0.2, 0.1, 0.9, 0.3]))
    groups = thresholds.ham_groups_by_source(_SMS_AND_VIDEOS)
    assert list(scores["youtube"]) == [0.1, 0.3]
    assert list(groups["youtube"]) == ["youtube:Psy", "youtube:Eminem"]
    assert set(groups) == set(scores) and len(groups["sms"]) == 1


def test_single_group_sources_are_not_grouped():
    """SMS messages (all labelled group "sms") are independent units; YouTube videos stay whole."""
    groups = folds.split_groups(_SMS_AND_VIDEOS)
    assert groups[0] != groups[1]
    assert groups[2] == groups[3] != groups[4]


def test_grouped_folds_never_split_a_group():
    """Every group's examples land in the same held-out fold."""
    examples = [
        _example(f"text {video} {i}", Label.SPAM if i % 2 else Label.HAM, "youtube", video)
        for video in ("A", "B", "C", "D", "E", "F")
        for i in range(10)
    ]
    groups = folds.split_groups(examples)
    for _, test in folds.grouped_folds(examples, folds=3):
        held_out = {groups[i] for i in test}
        assert all(groups[i] in held_out for i in range(len(examples)) if groups[i] in held_out)
        assert sum(1 for g in groups if g in held_out) == len(test)


def test_train_and_save_on_the_tiny_corpus(tmp_path, tiny_corpus):
    """Training writes a current, loadable model whose manifest holds thresholds, metrics and data counts."""
    messages = []
    manifest = training.train_and_save(tmp_path, examples=tiny_corpus, progress=messages.append)
    assert model_store.current_version(tmp_path) == manifest.version
    model = model_store.load_model(tmp_path)
    assert model.version == manifest.version
    assert manifest.thresholds == {
        "hold": model.thresholds.hold,
        "spam": model.thresholds.spam,
        "discard": model.thresholds.discard,
    }
    assert manifest.data["counts"]["total"] == len(tiny_corpus)
    assert manifest.data["fingerprint"].startswith(manifest.version.rsplit("-", 1)[1])
    assert set(manifest.metrics["pooled"]) >= {"roc_auc", "mcc", "ham_blocked", "spam_caught"}
    stored = json.loads((tmp_path / f"{manifest.version}.manifest.json").read_text())
    assert stored["sha256"] == manifest.sha256
    assert any("thresholds" in line for line in messages)
    spam = model.score(Comment("Cheap viagra online http://pills-shop.xyz buy now", author_name="cheap pills"))
    ham = model.score(Comment("Thanks, the PATH trick fixed my build."))
    assert spam.probability > ham.probability


def test_two_trainings_in_one_second_get_distinct_versions(tmp_path, tiny_corpus):
    """A second model trained on the same data in the same second does not collide with the first."""
    first = training.train_and_save(tmp_path, examples=tiny_corpus)
    second = training.train_and_save(tmp_path, examples=tiny_corpus)
    assert first.version != second.version
    assert model_store.current_version(tmp_path) == second.version


def test_build_training_set_adds_and_deduplicates_a_folder(tmp_path):
    """A folder's export is added to the shipped corpora, and a repeated text is kept once."""
    starter_only = training.build_training_set(None)
    rows = [
        {"content": "Totally fresh comment about sourdough starters", "label": "ham"},
        {"content": "totally   FRESH comment about sourdough starters", "label": "ham"},
    ]
    (tmp_path / "site.jsonl").write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    combined = training.build_training_set(tmp_path)
    assert len(combined) == len(starter_only) + 1
    assert {e.source for e in combined} == {"starter", "youtube", "sms", "site"}


@pytest.mark.corpora
def test_real_corpora_fold_plan_keeps_videos_whole(corpora_dir):
    """On the real corpora each YouTube video sits in exactly one held-out fold and SMS is spread out."""
    examples = training.build_training_set(corpora_dir)
    plan = folds.grouped_folds(examples)
    for video in {e.group for e in examples if e.source == "youtube"}:
        members = {i for i, e in enumerate(examples) if e.source == "youtube" and e.group == video}
        assert sum(1 for _, test in plan if members & set(test.tolist())) == 1
    sms = {i for i, e in enumerate(examples) if e.source == "sms"}
    assert all(sms & set(test.tolist()) for _, test in plan)
