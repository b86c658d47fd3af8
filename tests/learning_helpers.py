"""Helpers for the learning-loop tests: small models, a synthetic comment domain, stored labels."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

from moderation.comment import Comment, Label, LabelledComment
from moderation.policy.rules import fingerprint
from moderation.store.schema import CommentRecord, LabelRecord, Site

# A domain the starter corpus does not cover: text-message prize scams vs friends arranging things.
_SPAM_OPENERS = ["URGENT!", "Congratulations!", "FREE entry:", "Final notice:", "WINNER!!"]
_SPAM_BODIES = [
    "you have won a {prize}, text CLAIM to {code} now",
    "your mobile number was selected for a {prize}, call {code} to collect",
    "reply WIN to {code} for your guaranteed {prize} today",
]
_PRIZES = ["£1000 cash prize", "holiday to Tenerife", "new phone", "£500 voucher", "cruise for two"]
_HAM = [
    "are we still on for {time}? I'll bring the {thing}",
    "running late, see you at {time} by the {place}",
    "can you pick up the {thing} on your way home",
    "mum says dinner is at {time}, don't forget the {thing}",
    "just got to the {place}, where are you",
]
_TIMES = ["6", "half 7", "noon", "8ish", "lunch"]
_THINGS = ["cake", "keys", "charger", "milk", "tickets"]
_PLACES = ["station", "cinema", "library", "park gate", "shop"]


def domain(n_spam: int, n_ham: int, seed: int = 0) -> list[LabelledComment]:
    """Synthetic labelled comments from the text-message domain, shuffled."""
    rng = random.Random(seed)
    items = []
    for _ in range(n_spam):
        body = rng.choice(_SPAM_BODIES).format(prize=rng.choice(_PRIZES), code=rng.randint(80000, 89999))
        items.append(LabelledComment(Comment(f"{rng.choice(_SPAM_OPENERS)} {body}"), Label.SPAM, "sms-like"))
    for _ in range(n_ham):
        text = rng.choice(_HAM).format(time=rng.choice(_TIMES), thing=rng.choice(_THINGS), place=rng.choice(_PLACES))
        items.append(LabelledComment(Comment(text), Label.HAM, "sms-like"))
    rng.shuffle(items)
    return items


def new_site(session, name: str = "Blog") -> Site:
    """A site row (no key needed: these tests talk to the store directly)."""
    site = Site(name=name, key_hash=f"{name}-{random.random()}"[:64])
    session.add(site)
    session.commit()
    return site


def store_labelled(
    session,
    site: Site,
    items: list[LabelledComment] | list[tuple[str, Label]],
    *,
    source: str = "moderator",
    when: datetime | None = None,
    is_test: bool = False,
) -> list[int]:
    """Store comments with one label each (as the review queue, feedback or Akismet would); returns ids."""
    moment = when or datetime.now(UTC)
    ids = []
    for item in items:
        text, label = (item.comment.content, item.label) if isinstance(item, LabelledComment) else item
        record = CommentRecord(
            site_id=site.id,
            created_at=moment,
            content=text,
            content_hash=fingerprint(text),
            decision="hold",
            status="hold",
            is_test=is_test,
        )
        session.add(record)
        session.flush()
        session.add(
            LabelRecord(comment_id=record.id, label=Label(label).value, source=source, actor="t", created_at=moment)
        )
        ids.append(record.id)
    session.commit()
    return ids


def starter_model(version: str, *, random_state: int = 0, extra: list[LabelledComment] | None = None):
    """A SpamModel trained on the starter corpus (plus `extra`), thresholds out of fold, as `retrain` trains."""
    from moderation.core.corpora import deduplicate, load_starter
    from moderation.core.training import fit_with_thresholds

    examples = deduplicate(load_starter() + list(extra or []))
    random.Random(random_state).shuffle(examples)
    return fit_with_thresholds(examples, version=version, random_state=random_state).model


def save_and_register(session, model_dir: Path, model, *, promote: bool) -> None:
    """Save `model` into `model_dir`, register it, and promote it when asked."""
    from moderation.core.model_store import save_model
    from moderation.store import registry

    save_model(model_dir, model, data={"corpus": "starter"}, metrics={}, make_current=promote)
    registry.register(session, model_dir, model.version)
    if promote:
        registry.promote(session, model.version, model_dir=model_dir)
