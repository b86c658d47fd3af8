"""The spam model: training, calibrated scores, clues in words, thresholds, persistence, baseline."""

from __future__ import annotations

import pickle

import joblib
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.metrics import matthews_corrcoef
from tiny_corpus import TINY_CORPUS

from moderation.comment import Comment, Decision, Label, LabelledComment
from moderation.core.classifier import (
    SpamModel,
    _folds,
    example_weights,
    fit_model,
    platt_scaling,
    source_weights,
    train_baseline,
)
from moderation.core.features import SIGNALS_BEFORE_RECORDED_LAYOUT
from moderation.core.thresholds import Thresholds
from moderation.errors import DataError, ModelIntegrityError

SPAMMY = Comment("Check out my channel http://bit.ly/xyz and subscribe please!!!", author_name="Best Music Promo")
HAMMY = Comment("Thanks for taking the time to write this, the explanation was clear.", author_name="Lee")


@pytest.fixture(scope="module")
def model():
    """A model trained once on the tiny inline corpus."""
    return fit_model(TINY_CORPUS, version="tiny-1").model


def test_scores_are_probabilities_that_separate_obvious_cases(model):
    """An obvious spam scores above an obvious ham, both strictly between 0 and 1."""
    spam, ham = model.score(SPAMMY), model.score(HAMMY)
    assert 0.0 < ham.probability < 0.5 < spam.probability < 1.0
    assert spam.model_version == "tiny-1"


def test_clues_are_in_moderator_words(model):
    """Spam clues are phrases, words and signals in plain words, never raw character n-grams."""
    clues = model.score(SPAMMY).clues
    texts = [clue.text for clue in clues]
    assert clues and all(clue.weight > 0 for clue in clues)
    assert any(text.startswith(("phrase '", "word '")) for text in texts)
    assert any(text in {"1 link", "1 link to a URL shortener", "1 different linked site"} for text in texts)
    assert not any(clue.feature.startswith("char:") for clue in clues)
    assert [clue.weight for clue in clues] == sorted((clue.weight for clue in clues), reverse=True)


def test_phrases_show_the_comment_own_spelling(model):
    """A stemmed n-gram is shown as the commenter wrote it ("subscribe", not "subscrib")."""
    texts = [clue.text for clue in model.score(SPAMMY).clues]
    assert all("subscrib'" not in text for text in texts)


def test_ham_clues_have_negative_weight(model):
    """A clean comment's strongest clues pull towards ham, with negative weights."""
    clues = model.score(HAMMY).clues
    assert any(clue.weight < 0 for clue in clues)


def test_clue_weights_add_up_to_the_score(model):
    """The contributions are exact: all of them plus the intercept give the calibrated log-odds."""
    doc = model.features.prepare_many([SPAMMY])[0]
    columns, values = model.features.row(doc)
    slope, intercept = model.calibration
    log_odds = slope * (float((values * model.classifier.coef_[0][columns]).sum()) + model.classifier.intercept_[0])
    probability = 1 / (1 + np.exp(-(log_odds + intercept)))
    assert model.score(SPAMMY).probability == pytest.approx(probability)


def test_score_matches_batch_probabilities(model, tiny_corpus):
    """Scores with clues match scikit-learn's batch transform (`predict_proba`) to 1e-9."""
    comments = [example.comment for example in tiny_corpus]
    batch = model.predict_proba(comments)
    single = [score.probability for score in model.score_many(comments)]
    np.testing.assert_allclose(single, batch, rtol=1e-9)


def test_batch_scores_equal_single_scores_clues_included(model, tiny_corpus):
    """`score_many` gives each comment what `score` gives it alone (to rounding), clues included, also
    for comments with no known term (an empty row between others)."""
    comments = [example.comment for example in tiny_corpus]
    comments[3:3] = [Comment("zzqx"), Comment("")]
    batch = model.score_many(comments)
    single = [model.score(comment) for comment in comments]
    np.testing.assert_allclose([s.probability for s in batch], [s.probability for s in single], rtol=1e-12)
    for one, alone in zip(batch, single, strict=True):
        assert [(c.feature, c.text) for c in one.clues] == [(c.feature, c.text) for c in alone.clues]
        np.testing.assert_allclose([c.weight for c in one.clues], [c.weight for c in alone.clues], rtol=1e-12)
    assert sum(len(score.clues) for score in batch) > len(comments)
    assert model.score_many([]) == []


def test_single_comment_clues_are_the_batch_clue_choice_exactly(model, tiny_corpus):
    """`score`'s clue path for one comment gives exactly the Clue values, float for float, that the batch
    clue path `_clues` gives for the same row."""
    comments = [example.comment for example in tiny_corpus] + [SPAMMY, HAMMY, Comment("zzqx"), Comment("")]
    for doc in model.features.prepare_many(comments):
        columns, values = model.features.row(doc)
        weights = values * model._coef[columns] * model.calibration[0]
        owners = np.zeros(len(columns), dtype=np.intp)
        assert model._clues_of(columns, weights, doc) == model._clues(owners, columns, weights, [doc])[0]


@pytest.mark.parametrize("dump", ["pickle", "joblib"])
def test_round_trip_gives_identical_scores(model, tmp_path, dump):
    """A pickled or joblib-saved model scores exactly as the original, clues included."""
    if dump == "pickle":
        restored = pickle.loads(pickle.dumps(model))
    else:
        joblib.dump(model, tmp_path / "model.joblib")
        restored = joblib.load(tmp_path / "model.joblib")
    assert isinstance(restored, SpamModel)
    assert restored.score(SPAMMY) == model.score(SPAMMY)
    assert restored.score(HAMMY) == model.score(HAMMY)
    assert restored.thresholds == model.thresholds


def test_training_is_deterministic(tiny_corpus):
    """Training twice on the same data gives the same scores."""
    first = fit_model(tiny_corpus, version="a").model.predict_proba([SPAMMY, HAMMY])
    second = fit_model(tiny_corpus, version="b").model.predict_proba([SPAMMY, HAMMY])
    np.testing.assert_array_equal(first, second)


def test_training_needs_both_classes(tiny_corpus):
    """Too few examples of a class is a DataError that says what was found."""
    only_spam = [example for example in tiny_corpus if example.label is Label.SPAM]
    with pytest.raises(DataError, match="found 8 spam and 0 ham"):
        fit_model(only_spam).model
    with pytest.raises(DataError):
        fit_model([]).model


def test_source_weights_balance_corpora(tiny_corpus):
    """Balanced weights give each source the same total, and training with them still separates spam."""
    extra = [LabelledComment(HAMMY, Label.HAM, "other")] * 4
    examples = [*tiny_corpus, *extra]
    weights = source_weights(examples)
    assert weights[: len(tiny_corpus)].sum() == pytest.approx(weights[len(tiny_corpus) :].sum())
    assert weights.mean() == pytest.approx(1.0)
    model = fit_model(examples, balance_sources=True).model
    assert model.score(SPAMMY).probability > model.score(HAMMY).probability


def test_capped_weights_shrink_only_corpora_above_the_median_size(tiny_corpus):
    """Capped weighting gives a corpus above the median size the median's total and leaves the rest at par."""
    big = [LabelledComment(HAMMY, Label.HAM, "big")] * 40
    small = [LabelledComment(SPAMMY, Label.SPAM, "small")] * 3
    examples = [*tiny_corpus, *big, *small]
    weights = example_weights(examples, "capped")
    n = len(tiny_corpus)
    assert weights.mean() == pytest.approx(1.0)
    assert weights[n : n + 40].sum() == pytest.approx(weights[:n].sum())
    assert weights[n + 40] == pytest.approx(weights[0])
    np.testing.assert_array_equal(example_weights(examples, "none"), np.ones(len(examples)))
    with pytest.raises(ValueError, match="found 'loud'"):
        example_weights(examples, "loud")
    assert fit_model(examples, version="w").model.weighting == "capped"


def test_calibration_folds_split_a_single_group_corpus_but_not_videos(tiny_corpus):
    """Calibration folds keep each video together but spread a one-group corpus (all SMS) over folds."""
    videos = [LabelledComment(e.comment, e.label, "youtube", f"video{i % 3}") for i, e in enumerate(tiny_corpus)]
    sms = [LabelledComment(e.comment, e.label, "sms", "sms") for e in tiny_corpus]
    examples = [*videos, *sms]
    y = np.array([e.label is Label.SPAM for e in examples], dtype=int)
    folds = _folds(examples, y, random_state=0)
    is_sms = np.array([e.source == "sms" for e in examples])
    for _, test in folds:
        assert len({examples[i].group for i in test if not is_sms[i]}) <= 1
    assert sum(bool(is_sms[test].any()) for _, test in folds) > 1


def test_thresholds_decide_and_validate():
    """Thresholds map probabilities to the four decisions and refuse an inconsistent order."""
    thresholds = Thresholds(hold=0.3, spam=0.8, discard=0.97)
    assert [thresholds.decide(p) for p in (0.1, 0.3, 0.9, 0.99)] == [
        Decision.APPROVE,
        Decision.HOLD,
        Decision.SPAM,
        Decision.DISCARD,
    ]
    with pytest.raises(ValueError, match=r"hold=0\.9"):
        Thresholds(hold=0.9, spam=0.5, discard=0.99)


def test_platt_scaling_stays_finite_on_separable_scores():
    """Perfectly separated scores give a finite slope and probabilities short of certainty."""
    decision = np.array([-3.0, -2.0, -1.0, 1.0, 2.0, 3.0])
    slope, intercept = platt_scaling(decision, np.array([0, 0, 0, 1, 1, 1]))
    assert 0 < slope < 20
    assert abs(intercept) < 1


def test_baseline_is_a_clonable_pipeline(tiny_corpus):
    """The plain TF-IDF baseline trains on comments, predicts probabilities and clones."""
    baseline = train_baseline(tiny_corpus)
    assert baseline.predict_proba([SPAMMY, HAMMY]).shape == (2, 2)
    clone(baseline).fit(
        [example.comment for example in tiny_corpus], [example.label is Label.SPAM for example in tiny_corpus]
    )
    restored = pickle.loads(pickle.dumps(baseline))
    np.testing.assert_array_equal(restored.predict_proba([SPAMMY]), baseline.predict_proba([SPAMMY]))


@pytest.mark.corpora
@pytest.mark.slow
def test_beats_baseline_on_an_unseen_video(corpora_dir):
    """Trained on four YouTube videos, the model beats the baseline's MCC on the fifth."""
    import csv

    examples = []
    for path in sorted((corpora_dir / "youtube-spam-collection").glob("*.csv")):
        with path.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                label = Label.SPAM if row["CLASS"] == "1" else Label.HAM
                comment = Comment(row["CONTENT"], author_name=row["AUTHOR"])
                examples.append(LabelledComment(comment, label, "youtube", path.stem))
    held_out = "Youtube05-Shakira"
    train = [example for example in examples if example.group != held_out]
    seen = {example.comment.content for example in train}
    test = [example for example in examples if example.group == held_out and example.comment.content not in seen]
    y = [example.label is Label.SPAM for example in test]
    comments = [example.comment for example in test]
    ours = matthews_corrcoef(y, fit_model(train).model.predict_proba(comments) >= 0.5)
    base = matthews_corrcoef(y, train_baseline(train).predict_proba(comments)[:, 1] >= 0.5)
    assert ours > base
    assert ours > 0.85


def _as_saved_before_layout_was_recorded(model: SpamModel) -> SpamModel:
    """A copy of `model` as older code would have pickled it: no `signal_names_`, only the old signal columns."""
    old = pickle.loads(pickle.dumps(model))
    features, classifier = old.features, old.classifier
    start = features.n_words_ + features.n_chars_
    keep = [start + features.signal_names.index(name) for name in SIGNALS_BEFORE_RECORDED_LAYOUT]
    classifier.coef_ = np.hstack([classifier.coef_[:, :start], classifier.coef_[:, keep]])
    del features.signal_names_
    return pickle.loads(pickle.dumps(old))


def test_model_saved_with_the_older_signal_layout_still_scores(model):
    """An artifact from before the layout was recorded loads and scores with its own columns and clues."""
    old = _as_saved_before_layout_was_recorded(model)
    score = old.score(SPAMMY)
    assert score.probability == pytest.approx(float(old.predict_proba([SPAMMY])[0]))
    assert 0.5 < score.probability < 1.0
    assert all(
        clue.feature.removeprefix("signal:") in SIGNALS_BEFORE_RECORDED_LAYOUT
        for clue in score.clues
        if clue.feature.startswith("signal:")
    )


def test_model_whose_weights_do_not_fit_its_features_is_refused(model):
    """Unpickling a model with more or fewer weights than feature columns fails with a clear error."""
    broken = pickle.loads(pickle.dumps(model))
    broken.classifier.coef_ = broken.classifier.coef_[:, :-1]
    with pytest.raises(ModelIntegrityError, match="classifier weights"):
        pickle.loads(pickle.dumps(broken))
