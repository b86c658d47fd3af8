"""Attacker-written text made inert for moderators: escaped, trigger words highlighted, links as text.

Everything a commenter sent (content, name, email, URL) is hostile. Highlighting never runs a regex
over HTML: matches are found in the *raw* text, then every slice — matched or not — is escaped on its
own and only the matched slices are wrapped in `<mark>`. So the only markup in the output is ours.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

from moderation.core.text import extract_links, url_host

# Reasons quote what triggered them: "word 'viagra'", "the content contains 'casino' from the block list".
_QUOTED = re.compile(r"'([^']{2,80})'")
MAX_TERMS = 20


def trigger_terms(reasons: Iterable[object]) -> list[str]:
    """The quoted words and phrases in a comment's reasons, longest first, without duplicates."""
    seen: dict[str, str] = {}
    for reason in reasons:
        text = reason if isinstance(reason, str) else str(reason)
        for match in _QUOTED.finditer(text):
            term = match.group(1).strip()
            if term and term.lower() not in seen:
                seen[term.lower()] = term
    return sorted(seen.values(), key=len, reverse=True)[:MAX_TERMS]


def _term_pattern(terms: Sequence[str]) -> re.Pattern[str] | None:
    # A term may be a stem ("subscrib") or a phrase: match it at a word start, running to the word's end.
    parts = []
    for term in terms:
        words = [re.escape(w) for w in term.split()]
        if words:
            # A stem runs on to its word's end; a term ending in punctuation stops where it ends.
            parts.append(r"\s+".join(words) + (r"\w*" if re.match(r".*\w$", term) else ""))
    if not parts:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(parts) + ")", re.IGNORECASE)


def highlight(text: str, terms: Sequence[str]) -> Markup:
    """`text` escaped, with each occurrence of a term wrapped in <mark>; safe to insert into a page."""
    pattern = _term_pattern(terms)
    if pattern is None or not text:
        return escape(text)
    out: list[Markup] = []
    last = 0
    for match in pattern.finditer(text):
        out.append(escape(text[last : match.start()]))
        out.append(Markup("<mark>{}</mark>").format(match.group(0)))  # format() escapes the argument
        last = match.end()
    out.append(escape(text[last:]))
    return Markup("").join(out)


@dataclass(frozen=True, slots=True)
class ShownLink:
    """A link in a comment as a moderator sees it: the target as text, its host, the anchor text."""

    url: str
    host: str
    text: str
    openable: bool  # http(s) only: anything else (javascript:, data:) is never offered as a link


def links_in(text: str, limit: int = 20) -> list[ShownLink]:
    """The links in a comment's text (plain URLs and HTML anchors), at most `limit`."""
    shown = []
    for link in extract_links(text)[:limit]:
        scheme = link.url.split(":", 1)[0].lower()
        shown.append(ShownLink(link.url, link.host, link.text, scheme in ("http", "https")))
    return shown


def host_of(url: str) -> str:
    """The host name of a URL a commenter gave (for "website: example.com"), or ""."""
    if not url or (":" in url.split("/", 1)[0] and not url.lower().startswith(("http:", "https:"))):
        return ""  # javascript:, data:, mailto: … are not web sites
    return url_host(url)


def score_band(score: float | None) -> str:
    """A word for a score, used as a CSS class and for screen readers: low, unsure, high."""
    if score is None:
        return "unknown"
    if score >= 0.85:
        return "high"
    if score >= 0.35:
        return "unsure"
    return "low"
