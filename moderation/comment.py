"""Typed values at the edges: what a comment is, what we decide about it and why.

The core (text, features, classifier, policy) only ever sees these, never a request dict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Decision(StrEnum):
    """What the site should do with a comment."""

    APPROVE = "approve"  # publish
    HOLD = "hold"  # keep for a moderator
    SPAM = "spam"  # keep in the spam folder, do not publish
    DISCARD = "discard"  # blatant spam: the site need not even keep it (we still do)


class Label(StrEnum):
    """Ground truth, from a corpus, a moderator or a site's report."""

    SPAM = "spam"
    HAM = "ham"


# What a site may say about a comment's author, browser and page besides its `content`: Comment's text
# fields before `language` (`check --jsonl` accepts these, the stored-label query reads them in this order).
SENDER_FIELDS = (
    "author_name",
    "author_email",
    "author_url",
    "user_ip",
    "user_agent",
    "referrer",
    "permalink",
    "comment_type",
)


@dataclass(frozen=True, slots=True)
class Comment:
    """One comment as a site submitted it. Every field is attacker-controlled."""

    content: str
    author_name: str = ""
    author_email: str = ""
    author_url: str = ""
    user_ip: str = ""
    user_agent: str | None = None  # None: the site did not send one; "" : the browser sent none
    referrer: str = ""
    permalink: str = ""
    comment_type: str = ""
    language: str = ""
    rendered_at: datetime | None = None  # when the comment form was rendered, if the site tells us
    submitted_at: datetime | None = None  # when the form was submitted
    # What the page the comment is on is about, if the site tells us: its title, tags or categories.
    page_context: tuple[str, ...] = ()

    @property
    def seconds_to_submit(self) -> float | None:
        """Seconds between form render and submit, or None when either is unknown."""
        if self.rendered_at is None or self.submitted_at is None:
            return None
        return (self.submitted_at - self.rendered_at).total_seconds()


@dataclass(frozen=True, slots=True)
class LabelledComment:
    """A comment with its label and where it came from (source: corpus name; group: split unit).

    `weight` scales the example's training weight (a stored label's source weight and poisoning cap).
    """

    comment: Comment
    label: Label
    source: str
    group: str = ""
    weight: float = 1.0


@dataclass(frozen=True, slots=True)
class Clue:
    """One reason behind a score, in words a moderator understands.

    `weight` is the clue's contribution to the spam log-odds: positive pushes towards spam.
    """

    feature: str
    text: str
    weight: float


@dataclass(frozen=True, slots=True)
class Score:
    """The classifier's output: calibrated spam probability and the clues behind it."""

    probability: float
    clues: tuple[Clue, ...]
    model_version: str


@dataclass(frozen=True, slots=True)
class Verdict:
    """The policy's answer: decision, score, human reasons and the model that produced the score."""

    decision: Decision
    score: float
    reasons: tuple[str, ...]
    model_version: str | None
    rules: tuple[str, ...] = field(default=())  # identifiers of the rules that fired
