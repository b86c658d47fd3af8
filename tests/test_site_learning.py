"""Per-site learning: a site's labels shape its own decisions, not others'; one key cannot poison the global model."""

from __future__ import annotations

import random

import pytest
from check_helpers import check_comment
from learning_helpers import new_site, store_labelled

from moderation.comment import Comment, Decision, Label
from moderation.core.model_store import load_model
from moderation.learning.retrain import RetrainOptions, retrain
from moderation.learning.site_learning import parse_source_weights
from moderation.store import registry

PHRASE = "Thanks for sharing, this was really helpful"
NORMAL_HAM = [
    "I tried this on my own project and it worked first time",
    "Could you write a follow-up about the testing part?",
    "Great explanation, the diagrams made it click for me",
    "I disagree with the second point but the rest is spot on",
    "Bookmarked, this will save me hours next week",
]
NORMAL_SPAM = [
    "Buy cheap viagra online without prescription http://pills.example.xyz",
    "Earn $500 a day from home, message me on WhatsApp +1 555 0100 200",
    "Best casino bonus codes here http://bit.ly/casino-win",
    "I made 10 BTC with my account manager, contact him on telegram @richguy",
    "Check out my channel for free giftcards!!! subscribe now",
]


def _normal_labels(session, site, rounds: int) -> None:
    items = [(f"{t} ({i})", Label.HAM) for i in range(rounds) for t in NORMAL_HAM]
    items += [(f"{t} ({i})", Label.SPAM) for i in range(rounds) for t in NORMAL_SPAM]
    store_labelled(session, site, items)


def test_one_key_flooding_submit_spam_cannot_teach_the_global_model(champion_store):
    """1,000 Akismet submit-spam reports of a common ham phrase from one key leave it ham for everyone else."""
    engine, session, folder = champion_store
    flooder, other = new_site(session, "flooder"), new_site(session, "other")
    _normal_labels(session, other, 4)
    rng = random.Random(0)
    words = ("today", "indeed", "friend", "again", "really", "truly", "very", "much", "also", "here", "now")
    flood = [f"{PHRASE} {rng.choice(words)} {rng.choice(words)} {i}" for i in range(1000)]
    store_labelled(session, flooder, [(text, Label.SPAM) for text in flood], source="akismet")
    _normal_labels(session, other, 2)  # the most recent labels: the comparison slice

    result = retrain(engine, folder, None, RetrainOptions(force=True))
    model = load_model(folder, registry.champion(session).version)
    assert model.version == result.challenger
    assert result.training["stored"] + result.training["stored_duplicates"] + result.holdout["n"] >= 1000
    comment = Comment(f"{PHRASE}!", author_name="Sam")
    assert model.predict_proba([comment])[0] < model.thresholds.hold
    _record, verdict = check_comment(session, other, comment, model=model)
    assert verdict.decision is Decision.APPROVE


def test_a_sites_labels_shape_its_own_decisions_only(champion_store):
    """A site whose moderators call a phrase spam gets higher scores for it; other sites keep the global score."""
    engine, session, folder = champion_store
    strict, relaxed, bystander = new_site(session, "strict"), new_site(session, "relaxed"), new_site(session, "by")
    phrase = "join our discord server for the weekly meetup"
    store_labelled(session, strict, [(f"{phrase} number {i}", Label.SPAM) for i in range(30)])
    store_labelled(session, relaxed, [(f"{phrase} number {i}", Label.HAM) for i in range(30)])
    _normal_labels(session, strict, 3)
    _normal_labels(session, relaxed, 3)
    # The bystander labels nothing: a site with labels of its own gets a model of its own, whatever others say.

    retrain(engine, folder, None, RetrainOptions(force=True))
    model = load_model(folder, registry.champion(session).version)
    assert {strict.id, relaxed.id} <= set(model.sites)
    comment = Comment(f"{phrase} on friday", author_name="Kim")
    global_p = model.predict_proba([comment])[0]
    strict_p = model.score_for_site(comment, strict.id).probability
    relaxed_p = model.score_for_site(comment, relaxed.id).probability
    assert strict_p > global_p > relaxed_p
    assert strict_p - relaxed_p > 0.2
    assert model.score_for_site(comment, bystander.id).probability == pytest.approx(global_p)
    _record, verdict = check_comment(session, strict, comment, model=model)
    assert verdict.score == pytest.approx(strict_p)


def test_source_weights_are_parsed_strictly():
    """RETRAIN_SOURCE_WEIGHTS parses name=weight pairs and names a bad part."""
    from moderation.errors import ConfigError

    assert parse_source_weights("moderator=1, feedback=0.25") == {"moderator": 1.0, "feedback": 0.25}
    with pytest.raises(ConfigError, match="akismet"):
        parse_source_weights("moderator=1,akismet")


def test_sites_only_refits_site_models_on_the_champions_global_model(champion_store):
    """`retrain --sites-only` gives a site with new labels its model and leaves the global model as it was."""
    engine, session, folder = champion_store
    early, late = new_site(session, "early"), new_site(session, "late")
    _normal_labels(session, early, 3)
    retrain(engine, folder, None, RetrainOptions(force=True))
    before = load_model(folder, registry.champion(session).version)
    phrase = "join our discord server for the weekly meetup"
    store_labelled(session, late, [(f"{phrase} number {i}", Label.SPAM) for i in range(20)])
    _normal_labels(session, late, 2)

    result = retrain(engine, folder, None, RetrainOptions(sites_only=True))
    after = load_model(folder, registry.champion(session).version)
    assert result.promoted and after.version == result.challenger != before.version
    assert late.id not in before.sites and {early.id, late.id} <= set(after.sites)
    comment = Comment(f"{phrase} on friday", author_name="Kim")
    assert after.predict_proba([comment])[0] == pytest.approx(before.predict_proba([comment])[0])
    assert after.score_for_site(comment, late.id).probability > after.predict_proba([comment])[0] + 0.2
