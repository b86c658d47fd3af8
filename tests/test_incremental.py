"""Per-site models (incremental.fit_site_adjustment) and hashed features that outlive a change of signals."""

from __future__ import annotations

import numpy as np
import pytest
from learning_helpers import domain, starter_model
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import normalize

from moderation.comment import Comment, Label
from moderation.core import incremental
from moderation.core.incremental import SiteAdjustment, fit_site_adjustment


@pytest.fixture(scope="module")
def model():
    """The starter-corpus model the site models are fitted on."""
    return starter_model("site-model-0")


def _labels(items):
    return [item.comment for item in items], [item.label for item in items]


def test_a_site_model_learns_what_the_global_model_gets_backwards(model):
    """Moderators who call the text-message prize scams ham and the friends' messages spam get that ranking."""
    items = domain(40, 40, seed=1)
    flipped = [Label.HAM if item.label is Label.SPAM else Label.SPAM for item in items]
    adjustment = fit_site_adjustment(model, [item.comment for item in items], flipped)
    held_out = domain(30, 30, seed=2)
    comments, labels = _labels(held_out)
    y = np.array([1 if label is Label.HAM else 0 for label in labels])  # the site's spam: the domain's ham
    matrix = model.features.transform(comments)
    global_decision = model._decision(matrix)
    assert roc_auc_score(y, global_decision) < 0.5
    assert roc_auc_score(y, adjustment.combine(global_decision, matrix)) > 0.95
    assert adjustment.blend[1] > 0 and adjustment.own_c > 0


def test_the_own_model_scores_as_it_was_fitted(model):
    """The own part of a site's log-odds is the logistic regression on the site's l2-normalised columns."""
    comments, labels = _labels(domain(20, 20, seed=3))
    adjustment = fit_site_adjustment(model, comments, labels)
    matrix = model.features.transform(comments)
    expected = normalize(matrix[:, adjustment.indices]) @ adjustment.own_weights + adjustment.own_bias
    _anchored, own = adjustment.parts(matrix)
    np.testing.assert_allclose(own, expected, rtol=1e-4, atol=1e-4)
    a, b, c = adjustment.blend
    assert a >= 0 and b >= 0
    global_decision = model._decision(matrix)
    combined = adjustment.combine(global_decision, matrix)
    np.testing.assert_allclose(combined, a * (adjustment.scale * global_decision + _anchored) + b * own + c)


def test_one_spam_label_is_too_few_to_cross_validate(model):
    """With a single spam label the site gets the anchored correction alone."""
    comments, labels = _labels(domain(1, 15, seed=4))
    adjustment = fit_site_adjustment(model, comments, labels)
    assert adjustment.blend == (1.0, 0.0, 0.0)
    assert adjustment.own_c == 0.0
    assert (adjustment.spam, adjustment.ham) == (1, 15)


def test_a_correction_saved_before_site_models_still_scores(model):
    """A SiteAdjustment pickled without the own-model fields scores as its anchored correction alone."""
    comments, labels = _labels(domain(10, 10, seed=5))
    adjustment = fit_site_adjustment(model, comments, labels)
    old_state = {k: v for k, v in adjustment.__dict__.items() if k not in {"own_weights", "own_bias", "blend", "own_c"}}
    restored = SiteAdjustment.__new__(SiteAdjustment)
    restored.__setstate__(old_state)
    matrix = model.features.transform(comments)
    global_decision = model._decision(matrix)
    anchored, _own = adjustment.parts(matrix)
    np.testing.assert_allclose(restored.combine(global_decision, matrix), adjustment.scale * global_decision + anchored)


def test_hashed_features_keep_the_signals_they_were_fitted_with(model, monkeypatch):
    """A signal added to features.SIGNAL_NAMES after training does not change a saved model's columns."""
    comment = Comment("Win a free phone, text CLAIM to 80000 now", author_name="Promo")
    before = model.features.transform([comment])
    monkeypatch.setattr(incremental, "SIGNAL_NAMES", (*incremental.SIGNAL_NAMES, "a_new_signal"))
    after = model.features.transform([comment])
    assert after.shape == before.shape == (1, model.features.n_features)
    assert model.predict_proba([comment])[0] == pytest.approx(float(model._probability(model._decision(before))[0]))


def test_hashed_features_saved_before_layouts_were_recorded_keep_the_old_signals(model):
    """A fitted HashedFeatures without `signal_names_` reads the layout of its time; unknown signals are refused."""
    import pickle

    from moderation.core.features import SIGNALS_BEFORE_RECORDED_LAYOUT
    from moderation.errors import ModelIntegrityError

    old = pickle.loads(pickle.dumps(model.features))
    del old.signal_names_
    assert old.signal_names == SIGNALS_BEFORE_RECORDED_LAYOUT
    newer = pickle.loads(pickle.dumps(model.features))
    newer.signal_names_ = (*newer.signal_names_, "signal_from_the_future")
    with pytest.raises(ModelIntegrityError, match="signal_from_the_future"):
        pickle.loads(pickle.dumps(newer))
