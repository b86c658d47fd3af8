"""Property-based and worst-case tests of the code that reads attacker text: normaliser, links, tokens, signals.

Every function here gets hostile Unicode (lone surrogates, bidi overrides, zero-width runs, combining
stacks, look-alikes, characters NFKC expands eighteen-fold), markup fragments and huge repeats. It must
not raise, must finish quickly and must return output bounded by its input. Every regular expression in
the package is audited twice: statically (no unbounded repeat around another repeat, the shape behind
catastrophic backtracking) and by timing it on 100,000-character worst-case strings.
"""

from __future__ import annotations

import importlib
import math
import pkgutil
import re
import time
from re import _constants as sre_constants  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import moderation
from moderation.comment import Comment
from moderation.core.text import (
    MAX_CHARS,
    drop_links_to,
    extract_links,
    normalize,
    same_page,
    surface_tokens,
    tokenize,
    url_host,
)

# Fragments that have broken text handling somewhere: markup, entities, URL starts, invisible and
# directional characters, combining marks, Cyrillic/Greek look-alikes, NFKC's longest expansion (U+FDFA
# becomes 18 characters), emoji with joiners, lone surrogates, NUL.
HOSTILE = [
    "<a href=",
    '<a href="http://x.top">',
    "</a>",
    "<",
    ">",
    "<br",
    "&",
    "&#x",
    "&#1114112;",
    "&amp;lt;",
    "http://",
    "https://",
    "www.",
    ".com",
    "@",
    "+1 555",
    "\u200b",
    "\ufeff",
    "\u202e",
    "\u2066",
    "\u0301\u0302\u0303",
    "а",
    "ο",
    "\ufdfa",
    "\U0001f468\u200d\U0001f469",
    "\ud800",
    "\udfff",
    "\x00",
    "\r\n",
    "'",
    "-",
]
surrogates = st.integers(0xD800, 0xDFFF).map(chr)
any_char = st.one_of(st.characters(), surrogates)
hostile_text = st.lists(st.one_of(st.sampled_from(HOSTILE), st.text(any_char, max_size=8)), max_size=40).map("".join)
# A short hostile unit repeated to ~200k characters: ten times the longest text the functions read.
huge_text = st.lists(any_char | st.sampled_from(HOSTILE), min_size=1, max_size=4).map(
    lambda parts: "".join(parts) * (200_000 // len("".join(parts)) + 1)
)

# NFKC maps one character to at most 18 (U+FDFA); nothing else in normalize() lengthens text.
NFKC_MAX_EXPANSION = 18
fuzz = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# A hang guard, not a speed claim (speed lives in benchmarks/): linear code takes ~0.15 s on these inputs,
# catastrophic backtracking takes minutes, and a loaded CI machine must not turn the margin into a flake.
HANG_SECONDS = 30.0
fuzz_huge = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _timed(function, *args):
    started = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - started


@fuzz
@given(hostile_text)
def test_normalize_never_raises_and_output_is_bounded(text):
    """normalize() returns a str no longer than NFKC's worst expansion of what it reads, for any str."""
    result = normalize(text)
    assert isinstance(result, str)
    assert len(result) <= NFKC_MAX_EXPANSION * min(len(text), MAX_CHARS)
    assert "\u200b" not in result and "\ufeff" not in result


@fuzz
@given(hostile_text)
def test_extract_links_never_raises_and_links_come_from_the_text(text):
    """extract_links() returns Links whose URLs are no longer than the text, for any str."""
    links = extract_links(text)
    assert len(links) <= len(text)
    for link in links:
        assert isinstance(link.url, str) and isinstance(link.host, str)
        assert len(link.url) <= NFKC_MAX_EXPANSION * len(text)


@fuzz
@given(hostile_text)
def test_tokenize_never_raises(text):
    """tokenize() and surface_tokens() return lists of non-empty strings, at most one per character read."""
    for tokens in (tokenize(text), surface_tokens(text)):
        assert len(tokens) <= min(len(text), MAX_CHARS)
        assert all(isinstance(token, str) and token for token in tokens)


@fuzz
@given(hostile_text)
def test_url_host_never_raises(text):
    """url_host() returns a str for any input, including broken IPv6 literals and surrogates."""
    assert isinstance(url_host(text), str)
    assert isinstance(url_host("http://[" + text), str)


@fuzz
@given(hostile_text, hostile_text)
def test_same_page_and_drop_links_to_never_raise(url, page):
    """same_page() answers a bool and drop_links_to() never lengthens the text, for any link and page."""
    assert isinstance(same_page(url, page), bool)
    assert isinstance(same_page("http://[" + url, "https://youtu.be/" + page), bool)
    assert len(drop_links_to(url, page)) <= len(url)


@fuzz
@given(
    content=hostile_text.filter(str.strip),
    name=hostile_text,
    email=hostile_text,
    url=hostile_text,
    agent=st.none() | hostile_text,
    permalink=hostile_text,
)
def test_extract_signals_never_raises_and_values_are_finite(content, name, email, url, agent, permalink):
    """extract_signals() gives every named signal a finite float for any hostile comment."""
    from moderation.core.features import SIGNAL_NAMES, extract_signals

    signals = extract_signals(
        Comment(
            content=content, author_name=name, author_email=email, author_url=url, user_agent=agent, permalink=permalink
        )
    )
    assert set(signals) == set(SIGNAL_NAMES)
    assert all(isinstance(v, float) and math.isfinite(v) for v in signals.values())


@fuzz_huge
@given(huge_text)
def test_huge_input_is_read_in_bounded_time(text):
    """200k characters of a repeated hostile unit pass every text function without hanging."""
    from moderation.core.features import extract_signals

    for function, argument in (
        (normalize, text),
        (extract_links, text),
        (tokenize, text),
        (extract_signals, Comment(content=text, author_name=text[:500], author_url=text[:2000], permalink=text[:2000])),
    ):
        _, seconds = _timed(function, argument)
        assert seconds < HANG_SECONDS, f"{function.__name__} took {seconds:.2f} s on {text[:12]!r}..."


def test_model_scores_hostile_comments(tiny_model):
    """The trained model scores hostile and huge comments with a probability in [0, 1] and no exception."""
    comments = [Comment(content=text) for text in [*HOSTILE, "".join(HOSTILE) * 2000, "\ufdfa" * 100_000]]
    for score in tiny_model.score_many(comments):
        assert 0.0 <= score.probability <= 1.0


# --- The regex audit --------------------------------------------------------------------------------


def _package_patterns() -> list[tuple[str, re.Pattern[str]]]:
    """Every compiled regex bound to a module-level name anywhere in the moderation package."""
    found = []
    for info in pkgutil.walk_packages(moderation.__path__, "moderation."):
        if ".migrations" in info.name or info.name.endswith(".wsgi"):
            continue
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if isinstance(value, re.Pattern) and isinstance(value.pattern, str):
                found.append((f"{info.name}.{name}", value))
    return found


PATTERNS = _package_patterns()
_REPEATS = {sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT, sre_constants.POSSESSIVE_REPEAT}


def _nested_unbounded_repeats(parsed, inside_unbounded: bool = False) -> list[str]:
    """Repeats found inside an unbounded repeat (`(a+)+`, `(a|b*)*`): the catastrophic-backtracking shape."""
    problems = []
    for op, arg in parsed:
        if op in _REPEATS:
            low, high, body = arg
            if inside_unbounded and high > 1:
                problems.append(f"repeat {{{low},{high}}} inside an unbounded repeat")
            unbounded = high == sre_constants.MAXREPEAT
            problems += _nested_unbounded_repeats(body, inside_unbounded or unbounded)
        elif op == sre_constants.SUBPATTERN:
            problems += _nested_unbounded_repeats(arg[-1], inside_unbounded)
        elif op == sre_constants.BRANCH:
            for branch in arg[1]:
                problems += _nested_unbounded_repeats(branch, inside_unbounded)
        elif op in (sre_constants.ASSERT, sre_constants.ASSERT_NOT):
            problems += _nested_unbounded_repeats(arg[1], inside_unbounded)
    return problems


def test_the_audit_sees_the_package_regexes():
    """The audit finds the text and feature regexes (so an empty list cannot pass it vacuously)."""
    names = {name for name, _ in PATTERNS}
    expected = {"moderation.core.text._TAG", "moderation.core.text._BARE_DOMAIN", "moderation.core.features._EMAIL"}
    assert expected <= names
    assert _nested_unbounded_repeats(sre_parse.parse(r"(a+)+b")) and _nested_unbounded_repeats(
        sre_parse.parse("(a|b*)*")
    )


@pytest.mark.parametrize(("name", "pattern"), PATTERNS, ids=[name for name, _ in PATTERNS])
def test_regex_has_no_nested_unbounded_repetition(name, pattern):
    """No regex in the package puts a repeat inside an unbounded repeat."""
    assert _nested_unbounded_repeats(sre_parse.parse(pattern.pattern, pattern.flags)) == [], name


# Units whose repetition drives the package's patterns to their longest partial matches.
WORST_UNITS = [
    "a", "a.", "a-", "-a", "a.a-", "1", "1 ", "1-", "00-", "+1", "(1", "a@", "@a", "@a.", "a@a.", "<", "<a",
    "<a ", "<a href=", 'href="', "href= ", "www.", "http://", "a://", "&", "&#", " ", "\t\n", "!", "ab", "'",
    "a'", "a'a", "\u0301", "а", "аa", "é", "\U0001f600", "$1", "$1,", "a.com/", ".com", "[", "comment_context[1",
    "a ", "a.b", "1O", "(1O ", "\u2665a", "a\u2665", "\u2665a.com", "(dot)", " dot ", "a at ", "$1 ", "earn $1 ",
]  # fmt: skip
WORST_LENGTH = 100_000


@pytest.mark.parametrize(("name", "pattern"), PATTERNS, ids=[name for name, _ in PATTERNS])
def test_regex_is_fast_on_100k_worst_cases(name, pattern):
    """Each package regex scans (finditer, match, fullmatch) 100k-char repeats of every worst unit without hanging."""
    slowest = (0.0, "")
    for unit in WORST_UNITS:
        text = (unit * (WORST_LENGTH // len(unit) + 1))[:WORST_LENGTH]
        started = time.perf_counter()
        for _ in pattern.finditer(text):
            pass
        pattern.match(text)
        pattern.fullmatch(text)
        slowest = max(slowest, (time.perf_counter() - started, unit))
    assert slowest[0] < HANG_SECONDS, f"{name} took {slowest[0]:.2f} s on {slowest[1]!r} * {WORST_LENGTH}"


def test_review_highlight_pattern_is_fast_on_worst_cases():
    """The highlight regex built from reason terms (review.render) stays linear on 100k-character text."""
    from moderation.web.review.render import highlight

    terms = ["a a a a", "aaaa", "subscrib", "check out my channel", "a" * 80]
    for unit in ("a ", "a", "a  ", "check out my ", "A\u0301 "):
        text = (unit * (WORST_LENGTH // len(unit) + 1))[:WORST_LENGTH]
        _, seconds = _timed(highlight, text, terms)
        assert seconds < HANG_SECONDS, f"highlight took {seconds:.2f} s on {unit!r}"
