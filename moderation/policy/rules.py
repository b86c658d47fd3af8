"""Rules applied beside the model, each with a reason in moderator words (see policy for precedence).

    honeypot        a hidden form field was filled                       → discard
    too_fast        submitted implausibly soon after the form rendered   → at least hold
    too_many_links  more links than the site allows                      → at least hold
    blocklist       WordPress "disallowed keys" semantics                → at least spam
    allowlist       the same matching, the other way                     → approve
    trusted         approved history from the same email                 → an unsure score approves
    duplicate       the same normalised text from many authors           → at least spam
    flood           a burst of comments from one IP                      → at least hold

The history rules' counts come from the store (`store.history`); this module only judges them.

Block and allow lists follow WordPress's `wp_check_comment_disallowed_list`: one entry per line, blank
lines ignored, each entry matched case-insensitively as a substring of the content, author name,
email, URL, IP address and user agent (so `192.168.1.` covers a range and `casino` also catches
`casinos`). We also match the normalised content, so look-alike letters do not slip past a word.
"""

from __future__ import annotations

import hashlib
from typing import Any

from moderation.comment import Comment, Decision
from moderation.core.text import extract_links, normalize
from moderation.policy.decision import RuleHit, SiteSettings


def fingerprint(content: str) -> str:
    """SHA-256 of the normalised, case-folded text: equal for copies that differ only in obfuscation."""
    folded = " ".join(normalize(content).casefold().split())
    return hashlib.sha256(folded.encode("utf-8")).hexdigest()


def _fields(comment: Comment) -> list[tuple[str, str]]:
    return [
        ("content", comment.content),
        ("content", normalize(comment.content)),
        ("author name", comment.author_name),
        ("email", comment.author_email),
        ("URL", comment.author_url),
        ("IP address", comment.user_ip),
        ("user agent", comment.user_agent or ""),
    ]


def list_match(entries: tuple[str, ...], comment: Comment) -> tuple[str, str] | None:
    """The first (entry, field name) where an entry is a substring of a field, case-insensitively."""
    if not entries:
        return None
    haystacks = [(name, value.casefold()) for name, value in _fields(comment) if value]
    for entry in entries:
        needle = entry.casefold()
        for name, value in haystacks:
            if needle in value:
                return entry, name
    return None


def stateless_hits(comment: Comment, settings: SiteSettings, *, honeypot: str = "") -> list[RuleHit]:
    """The rules that need only the comment itself."""
    hits: list[RuleHit] = []
    if settings.honeypot and honeypot.strip():
        hits.append(RuleHit("honeypot", "the hidden honeypot field was filled in, which only bots do", "discard"))
    seconds = comment.seconds_to_submit
    if seconds is not None and seconds < settings.min_seconds_to_submit:
        hits.append(
            RuleHit(
                "too_fast",
                f"submitted {max(seconds, 0):.1f} s after the form was shown"
                f" (under {settings.min_seconds_to_submit:g} s)",
                "floor",
                Decision.HOLD,
            )
        )
    links = len(extract_links(comment.content))
    if links > settings.max_links:
        hits.append(
            RuleHit("too_many_links", f"{links} links (this site holds more than {settings.max_links})", "floor")
        )
    blocked = list_match(settings.blocklist, comment)
    if blocked:
        hits.append(RuleHit("blocklist", f"the {blocked[1]} contains '{blocked[0]}' from the block list", "block"))
    allowed = list_match(settings.allowlist, comment)
    if allowed:
        hits.append(RuleHit("allowlist", f"the {allowed[1]} contains '{allowed[0]}' from the allow list", "allow"))
    return hits



def history_rule_hits(counts: tuple[Any, ...], settings: SiteSettings) -> list[RuleHit]:
    """The history rules that fire, given the row of counts `history_query` answered."""
    approved, flagged, other_authors, recent = (int(n or 0) for n in counts)

    hits: list[RuleHit] = []
    if settings.trusted_min_approved > 0 and approved >= settings.trusted_min_approved and not flagged:
        hits.append(
            RuleHit(
                "trusted", f"trusted commenter: at least {approved} earlier approved comments from this email", "trust"
            )
        )
    authors = other_authors + 1
    if settings.duplicate_authors > 1 and authors >= settings.duplicate_authors:
        hits.append(
            RuleHit(
                "duplicate",
                f"the same text came from at least {authors} different authors in {settings.duplicate_window_hours} h",
                "floor",
                Decision.SPAM,
            )
        )
    if settings.flood_max > 0 and recent >= settings.flood_max:
        hits.append(
            RuleHit(
                "flood",
                f"at least {recent + 1} comments from this IP address in {settings.flood_window_seconds} s",
                "floor",
            )
        )
    return hits


