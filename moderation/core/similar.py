"""Near-duplicates: the comments of one campaign, which repeats itself with small changes.

    shingles(text) -> frozenset[int]          hashed word trigrams (letters only, lowercased)
    near_duplicates(seeds, candidates) -> ids  candidates sharing at least SIMILARITY of their shingles

A campaign varies counters, links, names and punctuation between copies, rarely its wording: word
trigrams over letters only (digits, URLs' punctuation and case dropped) stay the same across copies,
and Jaccard similarity of the two sets says how much of the wording two comments share. Exact, and
cheap for the few thousand recent comments a review page compares against.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable, Sequence

_WORD = re.compile(r"[^\W\d_]+")

# Share of word trigrams two comments must have in common (Jaccard) to count as copies of one campaign:
# "join our discord server for the weekly meetup number 7" and "... on friday" share 6 of 9 (0.67); an
# ordinary comment on the same topic, "I joined the weekly meetup, great server", 1 of 11.
SIMILARITY = 0.5


def shingles(text: str) -> frozenset[int]:
    """Hashed word trigrams of `text` (uni- and bigrams for texts under three words)."""
    words = _WORD.findall(text.lower())
    n = 3 if len(words) >= 3 else max(1, len(words))
    return frozenset(
        zlib.crc32(" ".join(words[i : i + n]).encode("utf-8", "surrogatepass")) for i in range(len(words) - n + 1)
    )


def jaccard(a: frozenset[int], b: frozenset[int]) -> float:
    """|a ∩ b| / |a ∪ b| (0 when both are empty)."""
    union = len(a | b)
    return len(a & b) / union if union else 0.0


def near_duplicates(
    seeds: Iterable[str], candidates: Sequence[tuple[int, str]], threshold: float = SIMILARITY
) -> list[int]:
    """The ids of `candidates` (id, text) whose shingles overlap some seed's by at least `threshold`, in order."""
    seed_sets = [s for s in (shingles(text) for text in seeds) if s]
    found = []
    for candidate_id, text in candidates:
        mine = shingles(text)
        if mine and any(jaccard(mine, seed) >= threshold for seed in seed_sets):
            found.append(candidate_id)
    return found


__all__ = ["SIMILARITY", "jaccard", "near_duplicates", "shingles"]
