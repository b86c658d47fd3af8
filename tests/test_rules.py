"""The rules beside the model: stateless ones on a Comment, history ones on real SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from check_helpers import check_comment

from moderation.comment import Comment, Decision, Label
from moderation.policy.decision import SiteSettings
from moderation.policy.rules import fingerprint, list_match, stateless_hits
from moderation.store.history import history_hits
from moderation.store.labels import record_label
from moderation.store.sites import create_site

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def rules_of(hits) -> list[str]:
    return [hit.rule for hit in hits]


@pytest.mark.parametrize(
    ("entry", "comment", "field"),
    [
        ("casino", Comment(content="Best CASINOS here"), "content"),
        ("viagra", Comment(content="buy vіagra"), "content"),  # Cyrillic і: caught on the normalised text
        ("spam.example", Comment(content="hi", author_url="http://www.spam.example/x"), "URL"),
        ("@mailinator.com", Comment(content="hi", author_email="bot@mailinator.com"), "email"),
        ("192.0.2.", Comment(content="hi", user_ip="192.0.2.77"), "IP address"),
        ("curl/", Comment(content="hi", user_agent="curl/8.0"), "user agent"),
        ("SEO Expert", Comment(content="hi", author_name="best seo expert 2024"), "author name"),
    ],
)
def test_lists_match_substrings_of_every_field_like_wordpress(entry, comment, field):
    """A list entry matches case-insensitively inside content, author, email, URL, IP or user agent."""
    assert list_match((entry,), comment) == (entry, field)


def test_lists_do_not_match_absent_entries():
    """An entry found nowhere does not match, and an empty list never does."""
    comment = Comment(content="A calm comment", author_email="a@example.org")
    assert list_match(("casino",), comment) is None
    assert list_match((), comment) is None


def test_stateless_rules_fire_with_reasons():
    """Honeypot, too fast, too many links and the lists each fire with a reason in words."""
    comment = Comment(
        content="see http://a.example http://b.example http://c.example casino",
        rendered_at=NOW,
        submitted_at=NOW + timedelta(seconds=1),
    )
    settings = SiteSettings(blocklist=("casino",), allowlist=("b.example",))
    hits = stateless_hits(comment, settings, honeypot="filled")
    assert rules_of(hits) == ["honeypot", "too_fast", "too_many_links", "blocklist", "allowlist"]
    assert "3 links" in hits[2].reason and "1.0 s" in hits[1].reason and "'casino'" in hits[3].reason


def test_stateless_rules_stay_quiet_for_a_normal_comment():
    """A comment typed in a minute with one link and an empty honeypot fires nothing."""
    comment = Comment(content="docs: https://docs.python.org", rendered_at=NOW, submitted_at=NOW + timedelta(minutes=1))
    assert stateless_hits(comment, SiteSettings(), honeypot="") == []


def test_switches_turn_rules_off():
    """A site can disable the honeypot and allow more links."""
    comment = Comment(content="http://a.example http://b.example http://c.example")
    assert stateless_hits(comment, SiteSettings(honeypot=False, max_links=5), honeypot="x") == []


def test_rules_answer_the_same_after_the_model_read_the_text():
    """The rules see the same text and links whether or not the features already normalised the comment
    and extracted its links (they share `text`'s caches), and whether those caches are cold."""
    from moderation.core.features import prepare
    from moderation.core.text import _links, normalize

    comment = Comment(content='<a href="http://x.top">sh\u043ep</a> casino http://a.example http://b.example')
    settings = SiteSettings(blocklist=("shop",))
    normalize.cache_clear()
    _links.cache_clear()
    cold = stateless_hits(comment, settings), fingerprint(comment.content)
    prepare(comment)
    warm = stateless_hits(comment, settings), fingerprint(comment.content)
    assert cold == warm
    assert rules_of(cold[0]) == ["too_many_links", "blocklist"]


def test_fingerprint_sees_through_obfuscation():
    """Copies differing in case, spacing, look-alike letters or zero-width characters share a fingerprint."""
    assert fingerprint("Buy  CHEAP pills") == fingerprint("buy cheap\u200b pіlls")
    assert fingerprint("Buy cheap pills") != fingerprint("Buy cheap bills")


def test_trusted_commenter_needs_approved_history_and_no_spam(db_session):
    """An email with an approved comment is trusted; once one of its comments is spam it is not."""
    site, _ = create_site(db_session, "Blog")
    first, _ = check_comment(db_session, site, Comment(content="first", author_email="ann@example.org"), model=None)
    comment = Comment(content="second", author_email="ANN@example.org")
    settings = SiteSettings()
    assert "trusted" not in rules_of(history_hits(db_session, site.id, comment, settings, content_hash="x", now=NOW))
    record_label(db_session, first, Label.HAM, source="moderator", actor="alice")
    hits = history_hits(
        db_session,
        site.id,
        Comment(content="second", author_email="ann@example.org"),
        settings,
        content_hash="x",
        now=NOW,
    )
    assert "trusted" in rules_of(hits)
    other, _ = check_comment(db_session, site, Comment(content="third", author_email="ann@example.org"), model=None)
    record_label(db_session, other, Label.SPAM, source="moderator", actor="alice")
    hits = history_hits(
        db_session, site.id, Comment(content="x", author_email="ann@example.org"), settings, content_hash="x", now=NOW
    )
    assert "trusted" not in rules_of(hits)


def test_same_text_from_many_authors_is_spam(db_session):
    """The third author posting the same text (modulo obfuscation) gets a spam verdict with the reason."""
    site, _ = create_site(db_session, "Blog")
    for name, text in [("a", "Great post, visit my page"), ("b", "GREAT post,  visit my page")]:
        _, verdict = check_comment(db_session, site, Comment(content=text, author_name=name), model=None)
        assert "duplicate" not in verdict.rules
    _, verdict = check_comment(
        db_session, site, Comment(content="great post, visit my page", author_name="c"), model=None
    )
    assert verdict.decision is Decision.SPAM and "duplicate" in verdict.rules
    assert any("3 different authors" in reason for reason in verdict.reasons)


def test_one_author_repeating_is_not_a_duplicate(db_session):
    """The same person posting the same text twice is not 'many authors'."""
    site, _ = create_site(db_session, "Blog")
    for _ in range(3):
        _, verdict = check_comment(db_session, site, Comment(content="+1", author_email="a@example.org"), model=None)
    assert "duplicate" not in verdict.rules


def test_burst_from_one_ip_is_a_flood(db_session):
    """More than flood_max comments from one IP inside the window holds with a reason; other IPs are unaffected."""
    site, _ = create_site(db_session, "Blog", settings={"flood_max": 2})
    verdicts = [
        check_comment(db_session, site, Comment(content=f"comment {i}", user_ip="203.0.113.5"), model=None)[1]
        for i in range(3)
    ]
    assert ["flood" in v.rules for v in verdicts] == [False, False, True]
    assert any("3 comments from this IP" in reason for reason in verdicts[2].reasons)
    _, calm = check_comment(db_session, site, Comment(content="hello", user_ip="203.0.113.6"), model=None)
    assert "flood" not in calm.rules


def test_rules_are_per_site(db_session):
    """History on one site does not count on another."""
    site, _ = create_site(db_session, "Blog", settings={"flood_max": 1})
    other, _ = create_site(db_session, "Other", settings={"flood_max": 1})
    check_comment(db_session, site, Comment(content="a", user_ip="203.0.113.5"), model=None)
    _, verdict = check_comment(db_session, other, Comment(content="b", user_ip="203.0.113.5"), model=None)
    assert "flood" not in verdict.rules


def test_history_counts_stop_at_the_rule_threshold(db_session):
    """A long spam run is counted only up to each rule's threshold, so later checks stay cheap."""
    site, _ = create_site(db_session, "Blog", settings={"flood_max": 2})
    for i in range(8):
        check_comment(db_session, site, Comment(content="same", author_name=f"a{i}", user_ip="203.0.113.9"), model=None)
    hits = history_hits(
        db_session,
        site.id,
        Comment(content="same", author_name="z", user_ip="203.0.113.9"),
        SiteSettings.from_dict({"flood_max": 2}),
        content_hash=fingerprint("same"),
        now=datetime.now(UTC),
    )
    reasons = {hit.rule: hit.reason for hit in hits}
    assert "at least 3 different authors" in reasons["duplicate"]  # 8 earlier authors, counted up to 3
    assert reasons["flood"].startswith("at least 3 comments from this IP")
