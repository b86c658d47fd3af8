"""Text normalisation, link extraction and tokenisation that see through cheap obfuscation.

Every input here is attacker-controlled, so each function caps how much text it reads
(`MAX_CHARS`) and every regular expression is linear-time: no nested quantifiers, bounded
repetition where a match could otherwise run to the end of the text.

    normalize(text)       -> str          the text a human would read, folded to plain forms
    reveal_contacts(text) -> str          normalised text with disguised addresses and numbers spelled plainly
    extract_links(text)   -> list[Link]   URLs in raw or HTML text, with the link text shown
    same_page(url, page)  -> bool         does a link point at the page the comment is on?
    tokenize(text)        -> list[str]    lowercased, stemmed word tokens (NLTK, no data needed)
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import parse_qsl, urlsplit

from nltk.stem.snowball import SnowballStemmer

# Comments longer than this are judged on their first 20k characters: enough for any real comment,
# and it bounds the work an attacker can cause per request.
MAX_CHARS = 20_000

# Zero-width characters, BOM, soft hyphen, bidi embeddings/overrides/isolates, and other format
# characters that render as nothing but split words for a naive tokenizer (the YouTube corpus's
# trailing U+FEFF, which leaks the label, also goes here).
_INVISIBLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u2064\u2066-\u206f\u3164\ufe00-\ufe0e\ufeff\uffa0]"
)
# "Zalgo" stacks of combining marks; two in a row are legitimate in some scripts, three are decoration.
_COMBINING_STACK = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]{3,}")

# Cyrillic and Greek letters that look like Latin ones. NFKC already folds fullwidth and
# mathematical alphanumerics ("𝐛𝐨𝐥𝐝" → "bold"); these survive it. Taken from Unicode's
# confusables.txt, restricted to letters a reader would take for the Latin letter at a glance.
_HOMOGLYPHS = {
    # Cyrillic lowercase
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c",
    "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i", "ј": "j", "ԁ": "d", "ԛ": "q", "ԝ": "w",
    "һ": "h", "ӏ": "l", "ь": "b", "г": "r", "п": "n", "ш": "w",
    # Cyrillic uppercase
    "А": "A", "В": "B", "Е": "E", "Ё": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C",
    "Т": "T", "У": "Y", "Х": "X", "Ѕ": "S", "І": "I", "Ї": "I", "Ј": "J", "Ԁ": "D", "Ԛ": "Q", "Ԝ": "W",
    "Һ": "H", "Ӏ": "I", "Ь": "b",
    # Greek
    "α": "a", "β": "b", "γ": "y", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p",
    "τ": "t", "υ": "u", "χ": "x", "ω": "w", "ς": "c",
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N", "Ο": "O",
    "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X",
}  # fmt: skip
_HOMOGLYPH_TABLE = str.maketrans(_HOMOGLYPHS)
_HAS_HOMOGLYPH = re.compile("[" + "".join(_HOMOGLYPHS) + "]")
_HAS_LATIN = re.compile("[A-Za-z]")
_WORD = re.compile(r"\w+")

# Tags: a bounded scan to the next '>' (no '<' inside), so an unclosed '<' costs O(1000) at most.
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9]{0,15})\b([^<>]{0,2000})>")
_HREF = re.compile(r"""\bhref\s{0,10}=\s{0,10}(?:"([^"]{0,2000})"|'([^']{0,2000})'|([^\s"'>]{1,2000}))""", re.I)
_BLOCK_TAGS = frozenset({"br", "p", "div", "li", "tr", "td", "blockquote", "h1", "h2", "h3", "h4", "h5", "h6"})

# Runs of one non-digit, non-space character: "soooo" → "soo", "!!!!!" → "!!". Digits are left
# alone so phone numbers and amounts survive, and "w" so "www." stays a web address.
_REPEAT = re.compile(r"([^\d\sWw])\1{2,}")
_SPACE = re.compile(r"\s+")

# URLs with a scheme or "www.", then bare domains on TLDs spammers and sites commonly use.
_URL = re.compile(r"(?:\b[a-z][a-z0-9+.-]{0,15}://|\bwww\.)[^\s<>\"'\x60]{1,2000}", re.I)
_BARE_TLDS = (
    "com|net|org|info|biz|io|co|me|us|uk|de|ru|fr|es|it|nl|pl|br|in|cn|jp|xyz|top|club|online|site|shop|store"
    "|click|link|live|tk|ml|ga|cf|gq|pw|ly|gl|gd|cc|ws|tv|su|icu|vip|win|bid|loan|work|today|buzz|fun|space"
)
_BARE_DOMAIN = re.compile(
    r"(?<![\w@.-])(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.){1,4}(?:" + _BARE_TLDS + r")\b(?:/[^\s<>\"']{0,2000})?",
    re.I,
)
_TRAILING_PUNCT = ".,;:!?)]}'\""

# Tokens: URLs become their host (the path is mostly random ids), then emails, money amounts,
# words (letters/digits, inner apostrophes and hyphens), emoji and other symbols one by one.
_TOKEN = re.compile(
    r"(?:https?://|www\.)[^\s<>\"']{1,2000}"
    r"|[\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){1,4}"
    r"|[$€£]\d[\d,.]{0,20}"
    r"|\w+(?:['’-]\w+){0,5}"
    r"|[^\w\s]",
    re.I,
)
_stemmer = SnowballStemmer("english")


@dataclass(frozen=True, slots=True)
class Link:
    """One link found in a comment: full URL, lowercased host, and the text shown for it ("" if bare)."""

    url: str
    host: str
    text: str = ""


# How many recent texts `normalize` and `extract_links` remember. A check reads the same content and author
# name several times (the duplicate fingerprint, the block list, the link-count rule, the model's features
# and signals), so the second and later reads are dictionary hits (docs/experiments.md: Text cache of the
# last 16 texts). Small on purpose: an entry holds a whole request's text (up to the 64 kB body limit) and
# its result, made from at most `MAX_CHARS` characters of it.
TEXT_CACHE = 16


@lru_cache(maxsize=TEXT_CACHE)
def normalize(text: str) -> str:
    """Return `text` as a reader sees it: tags stripped (link targets kept), entities decoded, NFKC,
    invisible characters removed, look-alike letters folded in mixed-script words, runs squashed,
    whitespace collapsed. Case is preserved. Reads at most `MAX_CHARS` characters; never raises on str.
    (Cached for the last `TEXT_CACHE` texts: a pure function of `text`.)"""
    text = text[:MAX_CHARS]
    if "<" in text:
        text = _strip_tags(text)
    if "&" in text:
        text = html.unescape(text)
    if not text.isascii():  # NFKC keeps ASCII as it is, and the next three patterns match only other characters
        text = unicodedata.normalize("NFKC", text)
        text = _INVISIBLE.sub("", text)
        text = _COMBINING_STACK.sub("", text)
        if _HAS_HOMOGLYPH.search(text):
            text = _WORD.sub(_fold_mixed_script, text)
    text = _REPEAT.sub(r"\1\1", text)
    return " ".join(text.split())  # str.split's whitespace is the pattern \s's (a test checks every character)


def _fold_mixed_script(match: re.Match[str]) -> str:
    """Fold look-alikes in a word that mixes Latin letters with them; leave single-script words alone."""
    word = match.group(0)
    if _HAS_LATIN.search(word) and _HAS_HOMOGLYPH.search(word):
        return word.translate(_HOMOGLYPH_TABLE)
    return word


def _strip_tags(text: str) -> str:
    """Remove HTML tags, keeping each link's target after its text: `<a href="u">t</a>` → "t u"."""
    pending: list[str] = []

    def replace(match: re.Match[str]) -> str:
        closing, name, attrs = match.group(1), match.group(2).lower(), match.group(3)
        if name == "a":
            if closing:
                return f" {pending.pop()} " if pending else " "
            href = _HREF.search(attrs)
            if href:
                pending.append(href.group(1) or href.group(2) or href.group(3) or "")
            return " "
        return " " if name in _BLOCK_TAGS else ""

    stripped = _TAG.sub(replace, text)
    # An unclosed <a href> still shows its target to the classifier.
    return " ".join([stripped, *pending]) if pending else stripped


# --- contacts spelled so that a filter misses them ---------------------------------------------------
#
# Spammers write an address or a number so that a reader still gets it and a pattern does not:
# "w h a t s a p p", "shop(dot)com", "anna [at] outlook [dot] com", "♥hotgirls.netk♥", "+1 (8OO) 555-0199".
# `reveal_contacts` rewrites only those spans, each by a rule narrow enough to leave ordinary text
# ("Dr. J. Smith", "look at python.org", "the dot com era", code) as it is.

# Decoration: arrows, shapes, dingbats, hearts, stars and emoji (Unicode So/Sm blocks), and the
# variation selector that turns a heart into its emoji form.
_DECORATION = "\u2190-\u21ff\u2300-\u23ff\u25a0-\u27bf\u2900-\u297f\u2b00-\u2bff\ufe0f\U0001f000-\U0001faff"
_HAS_DECORATION = re.compile(f"[{_DECORATION}]")
# Decoration inside a word or a domain: "wh❤️ats❤️app", "hotgirls❤.❤net".
_GLUED_DECORATION = re.compile(f"([A-Za-z0-9.])[{_DECORATION}]{{1,8}}(?=[A-Za-z0-9.])")
# A domain set between decorations with one letter too many on its ending: "♥hotgirls24.netk♥".
_STRAY_LETTER = re.compile(
    f"([{_DECORATION}]\\s?)((?:[a-z0-9-]{{1,63}}\\.){{1,4}}(?:{_BARE_TLDS}))[a-z](?=\\s?[{_DECORATION}])", re.I
)
# Five or more single letters, digits or address marks each set apart by one space: "w h a t s a p p",
# "h t t p s : / / x . c o m". Joined only when at least three of them are letters (spaced digits are
# already read as a phone number, "1 2 3 4 5" is a count and "2 u 4 a" text-speak).
_SPACED_HINT = re.compile(r" [A-Za-z0-9.:/@-] [A-Za-z0-9.:/@-] [A-Za-z0-9.:/@-] [A-Za-z0-9.:/@-] ")
_SPACED = re.compile(r"(?<!\S)(?:[A-Za-z0-9.:/@-] ){4,80}[A-Za-z0-9.:/@-](?!\S)")
_ASCII_LETTER = re.compile(r"[A-Za-z]")
# Five or more single letters or digits joined by one repeated mark: "W.h.a.t.s.A.p.p", "t-e-l-e-g-r-a-m".
_DOTTED_HINT = re.compile(r"[.*_~|-][A-Za-z0-9][.*_~|-][A-Za-z0-9][.*_~|-][A-Za-z0-9][.*_~|-]")
_DOTTED = re.compile(r"(?<![\w.*_~|-])([A-Za-z0-9])([.*_~|-])((?:[A-Za-z0-9]\2){3,40}[A-Za-z0-9])(?![\w*_~|-])")
# A dot or an at sign spelled in a bracket: "(dot)", "[.]", "{punkt}", "(at)", "[at]". Decoration next to
# it belongs to the disguise: "☛ newshub24 ☚ (dot) com".
_SPELLED_DOT = re.compile(
    f"[\\s{_DECORATION}]{{0,8}}[(\\[{{<]\\s?(?:dot|d0t|punkt|punto|point|ponto|nokta|titik|\\.)\\s?[)\\]}}>]\\s?", re.I
)
_SPELLED_AT = re.compile(r"\s?[(\[{<]\s?(?:at|@)\s?[)\]}>]\s?", re.I)
_SPELLED_HINT = re.compile(r"[(\[{<]\s?(?:dot|d0t|punkt|punto|point|ponto|nokta|titik|\.|at|@)\s?[)\]}>]", re.I)
# What the word forms below need: " at ", " dot ", " . " or an at sign with a space beside it.
_WORD_HINT = re.compile(r" (?:[aA][tT]|[dD][oO][tT]|\.|@) ")
# " dot " or " . " between a name and a web ending ("shopnow dot com", "moneyfromhome . biz"), but not
# after words that make it a phrase ("the dot com era", "ending in . co").
_WORD_DOT = re.compile(f"\\b([A-Za-z0-9-]{{1,63}}) (?:dot|\\.) ((?:{_BARE_TLDS})\\b)", re.I)
_NOT_A_NAME = frozenset(
    {"the", "a", "an", "of", "and", "or", "in", "on", "at", "to", "first", "old", "big", "that", "this", "his", "her"}
    | {"its", "their", "our"}
)
# " at " before a mailbox host, or before a name whose dot is spelled: "anna at gmail dot com" (not
# "look at python.org").
_MAIL_HOSTS = "gmail|googlemail|yahoo|hotmail|outlook|live|aol|icloud|proton|protonmail|gmx|yandex|mail|zoho|qq"
_WORD_AT = re.compile(
    f"(?<=[A-Za-z0-9_.+-]) at (?=(?:{_MAIL_HOSTS})\\s?(?:\\.|dot\\b|[(\\[{{])|[A-Za-z0-9-]{{1,63}} dot\\b)", re.I
)
# An at sign with spaces around it, inside an address: "anna @ outlook.com".
_SPACED_AT = re.compile(
    f"(?<=[A-Za-z0-9_.+-]) ?@ ?(?=[A-Za-z0-9-]{{1,63}}(?:\\.[A-Za-z0-9-]{{1,63}}){{0,3}}\\.(?:{_BARE_TLDS})\\b)", re.I
)
# A phone number with letters standing in for digits: "+1 (8OO) 555-0199", "O7700 9OO123". Looked for
# only in text with at least `_PHONE_MIN_DIGITS` real digits, counted in C for ASCII text.
_PHONE_MIN_DIGITS = 6
_ANY_DIGIT = re.compile(r"[0-9]")
_DIGIT_BYTES = b"0123456789"
_LOOKALIKE_DIGIT = re.compile(r"[0-9][OoIl]|[OoIl][0-9]")
_PHONE_WITH_LETTERS = re.compile(r"(?<![\w+])\+?\(?[\dOoIl][\dOoIl\s().-]{6,30}[\dOoIl]\)?(?!\w)")
_PHONE_PART = re.compile(r"[^\s().-]+")
_DIGIT_OF = str.maketrans("OoIl", "0011")


def reveal_contacts(text: str) -> str:
    """Return normalised `text` with disguised contacts written plainly: decoration inside words removed,
    spaced-out and dotted-out letters joined, a spelled "(dot)"/"[at]" made "."/"@", one stray letter after a
    domain set in decoration dropped, look-alike letters in a phone number made digits. Everything else is
    left as it is, and text without such a disguise comes back as the same object.

    Each rewrite runs only when the text holds what it needs (a decoration, four spaced single characters,
    a bracket, " at "...): most comments hold none of it (docs/experiments.md: Disguised contacts revealed
    for the features)."""
    revealed = text
    if not text.isascii() and _HAS_DECORATION.search(text):
        revealed = _STRAY_LETTER.sub(r"\1\2", _GLUED_DECORATION.sub(r"\1", revealed))
    if _SPACED_HINT.search(" " + revealed):  # the space lets a spaced-out word start the text
        revealed = _SPACED.sub(_join_spaced, revealed)
    if _DOTTED_HINT.search(revealed):
        revealed = _DOTTED.sub(_join_dotted, revealed)
    if _SPELLED_HINT.search(revealed):
        revealed = _SPELLED_AT.sub("@", _SPELLED_DOT.sub(".", revealed))
    if _WORD_HINT.search(revealed):
        revealed = _WORD_DOT.sub(_join_word_dot, _WORD_AT.sub("@", revealed))
    if "@ " in revealed or " @" in revealed:
        revealed = _SPACED_AT.sub("@", revealed)
    if _ascii_digits(revealed) >= _PHONE_MIN_DIGITS and _LOOKALIKE_DIGIT.search(revealed):
        revealed = _PHONE_WITH_LETTERS.sub(_phone_digits, revealed)
    return text if revealed == text else revealed


def _ascii_digits(text: str) -> int:
    """How many of the digits 0-9 `text` holds."""
    if text.isascii():
        raw = text.encode("ascii")
        return len(raw) - len(raw.translate(None, _DIGIT_BYTES))
    return len(_ANY_DIGIT.findall(text))


def _join_spaced(match: re.Match[str]) -> str:
    run = match.group(0)
    return run.replace(" ", "") if len(_ASCII_LETTER.findall(run)) >= 3 else run


def _join_dotted(match: re.Match[str]) -> str:
    run = match.group(0)
    joined = run.replace(match.group(2), "")
    return joined if len(_ASCII_LETTER.findall(joined)) >= 2 else run


def _join_word_dot(match: re.Match[str]) -> str:
    name = match.group(1)
    return match.group(0) if name.lower() in _NOT_A_NAME else f"{name}.{match.group(2)}"


def _phone_digits(match: re.Match[str]) -> str:
    """The phone-like run with look-alike letters made digits, when every part of it holds a real digit,
    it has at least 6 real digits and 8 to 15 in all; unchanged otherwise ("I 2 O" is not a number)."""
    run = match.group(0)
    parts = _PHONE_PART.findall(run)
    if not all(any(ch.isdigit() for ch in part) for part in parts if part != "+"):
        return run
    real = sum(ch.isdigit() for ch in run)
    digits = run.translate(_DIGIT_OF)
    total = sum(ch.isdigit() for ch in digits)
    return digits if real >= _PHONE_MIN_DIGITS and 8 <= total <= 15 else run


def extract_links(text: str) -> list[Link]:
    """Return the links in raw or HTML `text`, in order: `<a href>` links with their text, then bare
    URLs and bare domains in the remaining text. Reads at most `MAX_CHARS` characters. (A new list each
    call, from a cache of the last `TEXT_CACHE` texts' links.)"""
    return list(_links(text))


@lru_cache(maxsize=TEXT_CACHE)
def _links(text: str) -> tuple[Link, ...]:
    text = text[:MAX_CHARS]
    links: list[Link] = []
    if "<" in text:
        text = _pull_anchors(text, links)
    if "&" in text:
        text = html.unescape(text)
    text = _INVISIBLE.sub("", unicodedata.normalize("NFKC", text))
    urls = _URL.findall(text)
    links.extend(_make_link(url, "") for url in urls)
    if "." in text:  # a bare domain has one; without a URL there is nothing to blank out before looking
        for match in _BARE_DOMAIN.finditer(_URL.sub(" ", text) if urls else text):
            links.append(_make_link(match.group(0), ""))
    return tuple(links)


def _pull_anchors(text: str, links: list[Link]) -> str:
    """Append a Link for each `<a href>` in `text`; return the text with tags and anchored text removed."""
    out: list[str] = []
    position = 0
    open_href: str | None = None
    anchor_start = 0
    for match in _TAG.finditer(text):
        closing, name = match.group(1), match.group(2).lower()
        if open_href is None:
            out.append(text[position : match.start()])
        if name == "a" and not closing:
            href = _HREF.search(match.group(3))
            if href:
                if open_href is not None:  # <a> inside <a>: close the first one without text
                    links.append(_make_link(html.unescape(open_href), ""))
                open_href = href.group(1) or href.group(2) or href.group(3) or ""
                anchor_start = match.end()
        elif name == "a" and closing and open_href is not None:
            shown = html.unescape(_TAG.sub(" ", text[anchor_start : match.start()]))
            links.append(_make_link(html.unescape(open_href), _SPACE.sub(" ", shown).strip()))
            open_href = None
        position = match.end()
    if open_href is not None:
        links.append(_make_link(html.unescape(open_href), ""))
    else:
        out.append(text[position:])
    return " ".join(out)


def _make_link(url: str, shown: str) -> Link:
    """Build a Link, trimming sentence punctuation off the URL and reading its host."""
    url = url.strip().rstrip(_TRAILING_PUNCT)
    return Link(url=url, host=url_host(url), text=shown)


def url_host(url: str) -> str:
    """Return the lowercased host of `url` (scheme optional), without "www." and port; "" if none."""
    candidate = url.strip()
    if "://" not in candidate[:20]:
        candidate = "http://" + candidate
    try:
        host = urlsplit(candidate).hostname or ""
    except ValueError:  # e.g. an invalid IPv6 literal
        return ""
    host = host.rstrip(".")
    return host[4:] if host.startswith("www.") else host


# Hosts that serve one YouTube video under several URL shapes (watch?v=ID, youtu.be/ID, /embed/ID...).
_YOUTUBE_HOSTS = frozenset({"youtube.com", "m.youtube.com", "music.youtube.com", "youtu.be", "youtube-nocookie.com"})
_YOUTUBE_ID = re.compile(r"^[A-Za-z0-9_-]{11}$")


@lru_cache(maxsize=4096)
def page_key(url: str) -> tuple[str, str, frozenset[tuple[str, str]]] | None:
    """What identifies the page `url` shows: (host, path, query parameters), fragment ignored; for a
    YouTube video ("youtube", video id, {}) whatever form the URL takes. None for no usable URL."""
    candidate = url.strip()[:2000]
    if "://" not in candidate[:20]:
        candidate = "http://" + candidate
    try:
        parts = urlsplit(candidate)
        query = parse_qsl(parts.query, keep_blank_values=True)
    except ValueError:
        return None
    host = url_host(candidate)
    if not host:
        return None
    if host in _YOUTUBE_HOSTS:
        video = _youtube_video(host, parts.path, dict(query))
        if video:
            return "youtube", video, frozenset()
    return host, parts.path.rstrip("/") or "/", frozenset(query)


def _youtube_video(host: str, path: str, query: dict[str, str]) -> str:
    """The 11-character video id of a YouTube URL, or "" when it names no video."""
    segments = [segment for segment in path.split("/") if segment]
    if host == "youtu.be":
        candidate = segments[0] if segments else ""
    elif segments[:1] == ["watch"]:
        candidate = query.get("v", "")
    elif len(segments) >= 2 and segments[0] in ("embed", "shorts", "v", "live"):
        candidate = segments[1]
    else:
        candidate = ""
    return candidate if _YOUTUBE_ID.match(candidate) else ""


def same_page(url: str, page: str) -> bool:
    """True when link `url` points at `page` (the comment's permalink): same host and path, with at least
    the page's own query parameters (so "?p=12#comment-3" and "?p=12&replytocom=5" are post 12), or the
    same YouTube video in any URL form ("youtu.be/ID", "watch?v=ID&t=1m"). False when `page` is empty."""
    if not page:
        return False
    link_key, page_key_ = page_key(url), page_key(page)
    if link_key is None or page_key_ is None:
        return False
    return link_key[:2] == page_key_[:2] and page_key_[2] <= link_key[2]


def drop_links_to(text: str, page: str) -> str:
    """`text` without the URLs in it that point at `page` (see `same_page`); unchanged when `page` is empty."""
    if not page or "." not in text:
        return text

    def replace(match: re.Match[str]) -> str:
        url = match.group(0)
        trimmed = url.rstrip(_TRAILING_PUNCT)
        return url[len(trimmed) :] if same_page(trimmed, page) else url

    return _SPACE.sub(" ", _URL.sub(replace, text[:MAX_CHARS])).strip()


def tokenize(text: str) -> list[str]:
    """Split already-normalised `text` into lowercased, English-stemmed tokens; a URL becomes its host.

    Module-level on purpose: vectorizers reference it by import path, so saved models stay loadable."""
    return list(map(stem, surface_tokens(text)))


def surface_tokens(text: str) -> list[str]:
    """Split `text` into lowercased tokens before stemming (URLs become their host)."""
    lowered = text[:MAX_CHARS].lower()
    tokens: list[str] = _TOKEN.findall(lowered)
    if "http" in lowered or "www." in lowered:  # only then can a token be a URL
        tokens = [_url_as_host(token) for token in tokens]
    return tokens


def _url_as_host(token: str) -> str:
    """A URL token's host (the token itself when it has none); any other token unchanged."""
    if token[:4] in ("http", "www.") and ("://" in token or token.startswith("www.")):
        return url_host(token) or token
    return token


@lru_cache(maxsize=65_536)
def stem(token: str) -> str:
    """Snowball-stem a word token (cached: vocabularies are Zipfian); other tokens pass through."""
    if len(token) > 3 and token.isalpha():
        return str(_stemmer.stem(token))
    return token
