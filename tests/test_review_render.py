"""Inert rendering of attacker-written text: escaping first, highlights only around real matches."""

import pytest

from moderation.web.review import charts, render


def test_highlight_escapes_everything_but_its_own_marks():
    """HTML in the text comes out escaped; the only tags are the <mark>s we add."""
    out = str(render.highlight('<script>alert("x")</script> buy viagra', ["viagra"]))
    assert out == "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; buy <mark>viagra</mark>"


def test_terms_never_match_inside_entities():
    """A term like 'amp' or 'lt' cannot split an escaped entity (matching happens on the raw text)."""
    out = str(render.highlight("fish & chips < 5", ["amp", "lt", "chips"]))
    assert out == "fish &amp; <mark>chips</mark> &lt; 5"


def test_hostile_terms_are_escaped_too():
    """A quoted term from a reason (attacker-influenced) is escaped inside its mark."""
    out = str(render.highlight("<b>hi</b>", ["<b>"]))
    assert out == "<mark>&lt;b&gt;</mark>hi&lt;/b&gt;"


def test_stems_and_phrases_match_whole_words_case_insensitively():
    """A stem matches the rest of its word; a phrase matches across spaces; no match mid-word."""
    out = str(render.highlight("Subscribing to my  Channel, resubscribe", ["subscrib", "to my channel"]))
    assert out == "<mark>Subscribing</mark> <mark>to my  Channel</mark>, resubscribe"


def test_trigger_terms_come_from_quoted_parts_of_reasons():
    """Quoted words and phrases are pulled out of reasons, longest first, once each."""
    reasons = ["word 'cheap'", "phrase 'check out my channel'", "the content contains 'Cheap' from the block list"]
    assert render.trigger_terms(reasons) == ["check out my channel", "cheap"]


def test_links_are_text_with_their_host_and_only_http_is_openable():
    """Anchors and bare URLs become ShownLinks; javascript: targets are never openable."""
    links = render.links_in('<a href="javascript:alert(1)">x</a> see http://Spam.example/p')
    assert [(link.host, link.openable) for link in links][-1] == ("spam.example", True)
    assert not links[0].openable
    assert render.host_of("javascript:alert(1)") == "" and render.host_of("www.shop.example/x") == "shop.example"


def test_chart_escapes_labels_and_draws_one_bar_per_value():
    """Series names and labels are escaped in the SVG; zero values draw nothing."""
    svg = str(charts.stacked_bars("t<", ["2026-01-01", "2026-01-02"], {"spam": [3, 0]}, {"spam": "<b>"}))
    assert svg.count("<rect") == 1 and "&lt;b&gt;" in svg and "<b>" not in svg and 'aria-label="t&lt;"' in svg


@pytest.mark.parametrize("target", ["//[", "http://[::1", "https://evil.example/", "//evil.example", "\\\\evil", ""])
def test_safe_next_refuses_anything_but_a_local_path(target):
    """Redirect targets that are not plain local paths, including ones urlsplit cannot parse, fall back."""
    from moderation.web.review.auth import safe_next

    assert safe_next(target, "/review/") == "/review/"
    assert safe_next("/review/search?q=x", "/review/") == "/review/search?q=x"
