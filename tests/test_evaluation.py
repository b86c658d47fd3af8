"""Evaluation splits never leak test text into training, keep groups whole, and metrics are computed right."""

from __future__ import annotations

import numpy as np
import pytest

from moderation.comment import Comment, Label, LabelledComment
from moderation.core import evaluation, metrics
from moderation.core.corpora import dedup_key
from moderation.core.thresholds import Thresholds
from moderation.errors import DataError


def _ex(text: str, label: Label, source: str, group: str = "") -> LabelledComment:
    return LabelledComment(Comment(content=text), label, source, group)


def _corpus() -> list[LabelledComment]:
    """Three videos, SMS and starter examples, with one text repeated across videos in another case."""
    examples = []
    for video in ("Psy", "Eminem", "Shakira"):
        for i in range(6):
            label = Label.SPAM if i % 2 else Label.HAM
            examples.append(_ex(f"{video} comment number {i}", label, "youtube", video))
    examples.append(_ex("Check out my channel please", Label.SPAM, "youtube", "Psy"))
    examples.append(_ex("CHECK OUT  my channel please", Label.SPAM, "youtube", "Eminem"))
    examples += [_ex(f"sms text {i}", Label.SPAM if i % 3 == 0 else Label.HAM, "sms", "sms") for i in range(30)]
    examples += [_ex(f"starter text {i}", Label.SPAM if i % 2 else Label.HAM, "starter", "seo") for i in range(4)]
    examples += [_ex(f"written {i}", Label.SPAM if i % 2 else Label.HAM, "starter", "blog") for i in range(4)]
    examples += [_ex(f"forum {i}", Label.SPAM if i % 2 else Label.HAM, "starter", "forum") for i in range(4)]
    return examples


@pytest.mark.parametrize("protocol", list(evaluation.PROTOCOLS))
def test_no_test_text_appears_in_training(protocol):
    """In every split of every protocol, no normalised test text occurs on the training side."""
    for split in evaluation.make_splits(_corpus(), [protocol]):
        test_keys = {dedup_key(e.comment.content) for e in split.test}
        assert not test_keys & {dedup_key(e.comment.content) for e in split.train}, split.name


def test_leave_one_video_out_respects_groups():
    """Each lovo split tests on exactly one whole video and trains on everything but that video."""
    corpus = _corpus()
    splits = evaluation.make_splits(corpus, ["lovo"])
    assert [s.name for s in splits] == ["Eminem", "Psy", "Shakira"]
    for split in splits:
        assert {(e.source, e.group) for e in split.test} == {("youtube", split.name)}
        whole_video = [e for e in corpus if e.group == split.name]
        assert len(split.test) == len(whole_video)
        assert all(e.group != split.name for e in split.train)
        assert {e.source for e in split.train} == {"youtube", "sms", "starter"}


def test_youtube_only_protocol_trains_on_youtube_alone():
    """lovo-youtube trains on the other videos only."""
    for split in evaluation.make_splits(_corpus(), ["lovo-youtube"]):
        assert {e.source for e in split.train} == {"youtube"}


def test_written_corpus_is_tested_on_only_as_whole_kinds_of_site():
    """Only `unseen` puts written comments on the test side, and then one whole kind of site at a time."""
    splits = evaluation.make_splits(_corpus(), list(evaluation.PROTOCOLS))
    assert all(e.source != "starter" for split in splits if split.protocol != "unseen" for e in split.test)
    unseen = {s.name: s for s in splits if s.protocol == "unseen"}
    assert list(unseen) == ["youtube", "sms", "written blog", "written forum"]
    for kind in ("blog", "forum"):
        split = unseen[f"written {kind}"]
        assert {(e.source, e.group) for e in split.test} == {("starter", kind)} and len(split.test) == 4
        assert all(e.group != kind for e in split.train) and {"youtube", "sms"} <= {e.source for e in split.train}
    assert {e.source for e in unseen["youtube"].test} == {"youtube"}
    assert "youtube" not in {e.source for e in unseen["youtube"].train}


def test_sms_protocols():
    """sms-domain trains without SMS and tests on all of it; sms-cv partitions SMS into five folds."""
    corpus = _corpus()
    (domain,) = evaluation.make_splits(corpus, ["sms-domain"])
    assert all(e.source != "sms" for e in domain.train)
    assert len(domain.test) == 30
    folds = evaluation.make_splits(corpus, ["sms-cv"])
    assert len(folds) == 5
    tested = [e for split in folds for e in split.test]
    assert sorted(e.comment.content for e in tested) == sorted(e.comment.content for e in corpus if e.source == "sms")
    assert all({e.source for e in split.train} == {"sms"} for split in folds)


def test_missing_corpora_are_a_clear_data_error():
    """A protocol whose corpus is absent raises DataError naming it."""
    youtube_only = [e for e in _corpus() if e.source == "youtube"]
    with pytest.raises(DataError, match="SMS Spam Collection"):
        evaluation.make_splits(youtube_only, ["sms-domain"])
    with pytest.raises(DataError, match="unknown evaluation protocol"):
        evaluation.make_splits(youtube_only, ["random-split"])


def test_binary_metrics_on_known_scores():
    """Precision, recall, MCC, FPR and the threshold bands match a hand-worked example."""
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    scores = np.array([0.95, 0.8, 0.6, 0.3, 0.7, 0.2, 0.1, 0.05])
    m = metrics.binary_metrics(y, scores, Thresholds(hold=0.5, spam=0.75, discard=0.9))
    assert (m["precision"], m["recall"], m["fpr"]) == (0.75, 0.75, 0.25)
    assert m["mcc"] == pytest.approx(0.5)
    assert m["roc_auc"] == pytest.approx(14 / 16)
    assert m["ham_blocked"] == 0.0 and m["spam_caught"] == 0.5
    assert m["ham_held_or_blocked"] == 0.25
    assert m["spam_discarded"] == 0.25 and m["ham_discarded"] == 0.0
    assert m["recall_at_1pct_fpr"] == 0.5


def test_evaluate_split_runs_both_models_side_by_side(tiny_corpus):
    """One split trains the model and the baseline on the same data and scores the same test comments."""
    train = [LabelledComment(e.comment, e.label, "youtube", f"v{i % 3}") for i, e in enumerate(tiny_corpus)]
    test = [
        _ex("Subscribe to my channel for free money http://bit.ly/x", Label.SPAM, "youtube", "held"),
        _ex("I played this song at our wedding, still love it.", Label.HAM, "youtube", "held"),
    ]
    result = evaluation.evaluate_split(evaluation.Split("lovo", "held", tuple(train), tuple(test)))
    assert set(result.runs) == {"model", "baseline"}
    for run in result.runs.values():
        assert run.scores.shape == (2,)
        assert run.metrics["n"] == 2
        assert 0.0 <= run.thresholds.hold <= run.thresholds.spam <= run.thresholds.discard <= 1.0


@pytest.mark.corpora
def test_real_corpora_splits_do_not_leak(corpora_dir):
    """On the real corpora, every split of every protocol is free of test text on the training side."""
    from moderation.core.training import build_training_set

    examples = build_training_set(corpora_dir)
    splits = evaluation.make_splits(examples, list(evaluation.PROTOCOLS))
    assert sum(1 for s in splits if s.protocol == "lovo") == 5
    for split in splits:
        test_keys = {dedup_key(e.comment.content) for e in split.test}
        assert not test_keys & {dedup_key(e.comment.content) for e in split.train}
        if split.protocol.startswith("lovo"):
            assert len({e.group for e in split.test}) == 1
    assert [s.name for s in splits if s.protocol == "unseen"] == ["youtube", "sms"] + [
        f"written {kind}" for kind in evaluation.WRITTEN_SITE_KINDS
    ]
