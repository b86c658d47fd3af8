"""The policy: thresholds to decisions, site overrides, rule precedence, reasons; pure Python, no database."""

from __future__ import annotations

import pytest

from moderation.comment import Clue, Decision, Score
from moderation.core.thresholds import Thresholds
from moderation.errors import ConfigError
from moderation.policy.decision import RuleHit, SiteSettings, band, decide, percent

MODEL = Thresholds(hold=0.5, spam=0.9, discard=0.99)


def score(p: float) -> Score:
    clues = (Clue("w:casino", "phrase 'casino bonus'", 2.0), Clue("w:thanks", "word 'thanks'", -1.0))
    return Score(probability=p, clues=clues, model_version="v1")


@pytest.mark.parametrize(
    ("p", "expected"),
    [(0.0, "approve"), (0.49, "approve"), (0.5, "hold"), (0.89, "hold"), (0.9, "spam"), (0.99, "discard")],
)
def test_band_follows_the_thresholds(p, expected):
    """Below hold approves, [hold, spam) holds, [spam, discard) is spam, discard and above discards."""
    assert band(p, (0.5, 0.9, 0.99)) == Decision(expected)


def test_site_thresholds_override_the_models():
    """A site's own threshold replaces the model's; the others stay the model's."""
    strict = SiteSettings.from_dict({"thresholds": {"spam": 0.6}})
    assert strict.thresholds(MODEL) == (0.5, 0.6, 0.99)
    assert decide(score(0.7), [], strict, MODEL).decision is Decision.SPAM
    assert decide(score(0.7), [], SiteSettings(), MODEL).decision is Decision.HOLD


def test_site_override_past_the_next_threshold_keeps_the_order():
    """A site hold threshold above the model's spam threshold cannot make the bands overlap."""
    assert SiteSettings(hold=0.95).thresholds(MODEL) == (0.95, 0.95, 0.99)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"spam": 1.5}, "spam threshold"),
        ({"hold": 0.9, "spam": 0.5}, "hold ≤ spam ≤ discard"),
        ({"max_links": -1}, "max_links"),
        ({"blocklist": [1]}, "blocklist"),
        ({"honeypot": "yes"}, "honeypot"),
    ],
)
def test_bad_site_settings_are_refused(data, message):
    """Settings policy cannot use raise ConfigError naming the key."""
    with pytest.raises(ConfigError, match=message):
        SiteSettings.from_dict(data)


def test_block_and_allow_lists_accept_lines_or_lists():
    """A list may come as a JSON list or as WordPress-style lines; blank entries are dropped."""
    settings = SiteSettings.from_dict({"blocklist": "casino\n\n  viagra \n", "allowlist": ["example.org"]})
    assert settings.blocklist == ("casino", "viagra") and settings.allowlist == ("example.org",)


def test_no_model_holds_and_says_so():
    """Without a model every comment is held and the first reason says why."""
    verdict = decide(None, [], SiteSettings())
    assert verdict.decision is Decision.HOLD and verdict.model_version is None
    assert verdict.reasons == ("no model loaded: held for a moderator",)


def test_unsure_band_holds_with_a_reason():
    """A score in the unsure band holds and the reasons say it is unsure."""
    verdict = decide(score(0.7), [], SiteSettings(), MODEL)
    assert verdict.decision is Decision.HOLD and any("unsure" in r for r in verdict.reasons)


def test_honeypot_discards_even_an_allowlisted_comment():
    """A filled honeypot wins over everything."""
    hits = [RuleHit("allowlist", "allowed", "allow"), RuleHit("honeypot", "honeypot filled", "discard")]
    assert decide(score(0.01), hits, SiteSettings(), MODEL).decision is Decision.DISCARD


def test_blocklist_makes_spam_and_a_conflict_holds():
    """A block list match is at least spam; with an allow list match too, the contradiction holds."""
    block = RuleHit("blocklist", "blocked", "block")
    allow = RuleHit("allowlist", "allowed", "allow")
    assert decide(score(0.01), [block], SiteSettings(), MODEL).decision is Decision.SPAM
    assert decide(score(0.995), [block], SiteSettings(), MODEL).decision is Decision.DISCARD
    assert decide(score(0.01), [block, allow], SiteSettings(), MODEL).decision is Decision.HOLD


def test_allowlist_approves_unless_another_rule_fires():
    """An allow list match approves a high score, but holds when a risk rule also fired."""
    allow = RuleHit("allowlist", "allowed", "allow")
    fast = RuleHit("too_fast", "too fast", "floor", Decision.HOLD)
    assert decide(score(0.95), [allow], SiteSettings(), MODEL).decision is Decision.APPROVE
    assert decide(score(0.95), [allow, fast], SiteSettings(), MODEL).decision is Decision.HOLD


def test_trusted_commenter_turns_unsure_into_approve_but_not_spam():
    """Approved history approves an unsure score; a spam score stays spam."""
    trust = RuleHit("trusted", "trusted commenter", "trust")
    assert decide(score(0.7), [trust], SiteSettings(), MODEL).decision is Decision.APPROVE
    assert decide(score(0.95), [trust], SiteSettings(), MODEL).decision is Decision.SPAM


def test_risk_rules_raise_the_decision_to_their_floor():
    """Too fast holds a clean comment; a duplicate from many authors is spam; reasons lead with the rules."""
    fast = RuleHit("too_fast", "submitted 1.0 s after the form was shown", "floor", Decision.HOLD)
    dup = RuleHit("duplicate", "the same text came from 3 different authors", "floor", Decision.SPAM)
    held = decide(score(0.01), [fast], SiteSettings(), MODEL)
    assert held.decision is Decision.HOLD and held.reasons[0].startswith("submitted") and held.rules == ("too_fast",)
    assert decide(score(0.01), [fast, dup], SiteSettings(), MODEL).decision is Decision.SPAM


def test_reasons_quote_the_clues_pointing_the_way_of_the_decision():
    """Spam verdicts quote spam clues; approvals quote ham clues."""
    assert "phrase 'casino bonus'" in decide(score(0.95), [], SiteSettings(), MODEL).reasons
    assert "word 'thanks'" in decide(score(0.1), [], SiteSettings(), MODEL).reasons


@pytest.mark.parametrize(("probability", "shown"), [(0.9968, ">99%"), (0.004, "<1%"), (0.5, "50%"), (0.986, "99%")])
def test_percent_never_claims_certainty(probability, shown):
    """Probabilities near 0 or 1 read as '<1%' / '>99%', not a rounded '0%' or '100%'."""
    assert percent(probability) == shown
