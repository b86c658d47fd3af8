"""From a spam probability and the rules that fired to a decision, with reasons a moderator can read.

Precedence, strongest first (the order WordPress applies its own comment checks in):

1. honeypot filled → discard (no person fills a field they cannot see);
2. block list match → at least spam; if the allow list matches too, the site contradicts itself → hold;
3. allow list match → approve, unless another risk rule fired → hold;
4. otherwise the model's band under the site's thresholds (approve / hold / spam / discard), where a
   trusted commenter's "hold" becomes "approve", then every risk rule raises the decision to its floor
   (too fast, too many links, flood → at least hold; the same text from many authors → at least spam).

When unsure, hold: no model, a conflict between lists, or a score in the unsure band all hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from moderation.comment import Decision, Score, Verdict
from moderation.core.thresholds import Thresholds
from moderation.errors import ConfigError

SEVERITY = {Decision.APPROVE: 0, Decision.HOLD: 1, Decision.SPAM: 2, Decision.DISCARD: 3}

# Used only when neither the site nor the model has thresholds (a model always carries its own).
DEFAULT_THRESHOLDS = (0.35, 0.85, 0.98)

# How many model clues a verdict quotes; moderators read three, they skim ten.
MAX_CLUES = 3


@dataclass(frozen=True, slots=True)
class RuleHit:
    """One rule that fired: its identifier, the reason in moderator words, and what it does."""

    rule: str
    reason: str
    effect: str  # "discard" | "block" | "allow" | "trust" | "floor"
    floor: Decision = Decision.HOLD  # for effect "floor": the least severe decision allowed


@dataclass(frozen=True, slots=True)
class SiteSettings:
    """A site's policy: thresholds overriding the model's, rule switches and limits, block and allow lists."""

    hold: float | None = None
    spam: float | None = None
    discard: float | None = None
    honeypot: bool = True
    min_seconds_to_submit: float = 3.0  # people need a few seconds to type even "thanks"
    max_links: int = 2  # WordPress's default for comment_max_links
    blocklist: tuple[str, ...] = ()
    allowlist: tuple[str, ...] = ()
    trusted_min_approved: int = 1  # WordPress: "comment author must have a previously approved comment"
    duplicate_authors: int = 3  # the same normalised text from this many different authors → spam
    duplicate_window_hours: int = 24
    flood_max: int = 5  # more than this many comments from one IP ...
    flood_window_seconds: int = 60  # ... within this many seconds → hold
    extra: dict[str, Any] = field(default_factory=dict)  # keys other modules keep in the same JSON

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> SiteSettings:
        """Validate a site's stored settings JSON; a bad value raises ConfigError naming the key."""
        data = dict(data or {})
        known = {f.name for f in fields(cls)} - {"extra"}
        values: dict[str, Any] = {}
        thresholds = data.pop("thresholds", None)
        if isinstance(thresholds, dict):
            data = {**{k: thresholds.get(k) for k in ("hold", "spam", "discard")}, **data}
        for name in known:
            if name not in data or data[name] is None:
                continue
            values[name] = _coerce(name, data.pop(name), cls.__dataclass_fields__[name].default)
        for name in ("hold", "spam", "discard"):
            data.pop(name, None)
        settings = cls(**values, extra=data)
        given = [v for v in (settings.hold, settings.spam, settings.discard) if v is not None]
        if given != sorted(given):
            raise ConfigError(f"thresholds: expected hold ≤ spam ≤ discard, found {given}")
        return settings

    def thresholds(self, model_thresholds: Thresholds | None) -> tuple[float, float, float]:
        """(hold, spam, discard): the site's where set, else the model's, else the defaults."""
        base = (
            (model_thresholds.hold, model_thresholds.spam, model_thresholds.discard)
            if model_thresholds is not None
            else DEFAULT_THRESHOLDS
        )
        chosen = (
            base[0] if self.hold is None else self.hold,
            base[1] if self.spam is None else self.spam,
            base[2] if self.discard is None else self.discard,
        )
        if list(chosen) != sorted(chosen):  # a site overriding one threshold past the model's next one
            chosen = (chosen[0], max(chosen[0], chosen[1]), max(chosen[0], chosen[1], chosen[2]))
        return chosen


def _coerce(name: str, value: Any, default: Any) -> Any:
    if name in ("blocklist", "allowlist"):
        if isinstance(value, str):
            value = value.splitlines()
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{name}: expected a list of strings, found {value!r}")
        return tuple(v.strip() for v in value if v.strip())
    if name in ("hold", "spam", "discard"):
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
            raise ConfigError(f"{name} threshold: expected a number from 0 to 1, found {value!r}")
        return float(value)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{name}: expected true or false, found {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"{name}: expected a non-negative number, found {value!r}")
    return type(default)(value)


def band(probability: float, thresholds: tuple[float, float, float]) -> Decision:
    """The decision a probability falls in: below hold → approve; hold… → hold; spam… → spam; discard… → discard."""
    hold, spam, discard = thresholds
    if probability >= discard:
        return Decision.DISCARD
    if probability >= spam:
        return Decision.SPAM
    if probability >= hold:
        return Decision.HOLD
    return Decision.APPROVE


def _raise_to(decision: Decision, floor: Decision) -> Decision:
    return floor if SEVERITY[floor] > SEVERITY[decision] else decision


def decide(
    score: Score | None,
    hits: Sequence[RuleHit],
    settings: SiteSettings,
    model_thresholds: Thresholds | None = None,
    *,
    unscored: str = "no model loaded",
) -> Verdict:
    """Combine the model's score and the rules that fired into a Verdict.

    `score` None (no model, or the model failed: `unscored` says which) holds the comment.
    """
    by_effect: dict[str, list[RuleHit]] = {}
    for hit in hits:
        by_effect.setdefault(hit.effect, []).append(hit)
    floors = by_effect.get("floor", [])
    reasons: list[str] = []
    fired = [hit.rule for hit in hits]

    if score is None:
        decision = Decision.HOLD
        reasons.append(f"{unscored}: held for a moderator")
        probability = 0.5  # unknown; the API reports null for a comment scored without a model
        version = None
    else:
        probability = score.probability
        version = score.model_version
        thresholds = settings.thresholds(model_thresholds)
        decision = band(probability, thresholds)
        if decision is Decision.HOLD and "trust" in by_effect:
            decision = Decision.APPROVE
        if decision is Decision.HOLD:
            reasons.append(
                f"unsure: spam probability {percent(probability)} is between the approve and spam thresholds"
            )

    if "discard" in by_effect:
        decision = Decision.DISCARD
    elif "block" in by_effect and "allow" in by_effect:
        decision = Decision.HOLD
        reasons.append("both the block list and the allow list match: held for a moderator")
    elif "block" in by_effect:
        decision = _raise_to(decision, Decision.SPAM)
    elif "allow" in by_effect:
        decision = Decision.HOLD if floors else Decision.APPROVE
    else:
        for hit in floors:
            decision = _raise_to(decision, hit.floor)

    reasons[:0] = [hit.reason for hit in hits]
    if score is not None:
        reasons.append(f"classifier: {percent(probability)} spam probability")
        reasons.extend(_clue_reasons(score, decision))
    return Verdict(
        decision=decision, score=probability, reasons=tuple(reasons), model_version=version, rules=tuple(fired)
    )


def percent(probability: float) -> str:
    """A probability as a moderator reads it: '97%', never a rounded '100%' or '0%' that claims certainty."""
    if probability > 0.99:
        return ">99%"
    if probability < 0.01:
        return "<1%"
    return f"{probability:.0%}"


def _clue_reasons(score: Score, decision: Decision) -> list[str]:
    """The strongest clues pointing the way the decision went (towards spam unless approved)."""
    towards_spam = decision is not Decision.APPROVE
    clues = [c for c in score.clues if (c.weight > 0) == towards_spam and c.weight != 0]
    clues.sort(key=lambda c: abs(c.weight), reverse=True)
    return [c.text for c in clues[:MAX_CLUES]]
