"""Features of a comment: word and character n-grams of its normalised text, plus named signals.

    extract_signals(comment)   -> dict[str, float]   metadata, contact, page and shape signals, about [0, 1]
    describe_signal(name, v)   -> str                a signal in a moderator's words
    build_features()           -> CommentFeatures    list[Comment] -> sparse matrix (sklearn transformer)

Signals are log1p of counts or 0/1 flags so that their weights compare with TF-IDF values. Every
signal name in `SIGNAL_NAMES` is always present (0.0 when it does not apply), which keeps the feature
layout fixed and lets a clue be read back from its column.
"""

from __future__ import annotations

import ipaddress
import math
import re
import string
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache, partial
from itertools import chain, pairwise, repeat
from typing import Any

import numpy as np
import scipy.sparse as sp
import tldextract
from disposable_email_domains import blocklist as DISPOSABLE_MAIL
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer
from sklearn.utils.validation import check_is_fitted

from moderation.comment import Comment
from moderation.core.text import (
    Link,
    drop_links_to,
    extract_links,
    normalize,
    reveal_contacts,
    same_page,
    stem,
    surface_tokens,
    tokenize,
    url_host,
)
from moderation.errors import ModelIntegrityError


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


SHORTENERS = _words(
    "bit.ly bitly.com tinyurl.com goo.gl t.co ow.ly is.gd v.gd cutt.ly rebrand.ly buff.ly adf.ly shorturl.at "
    "tiny.cc rb.gy t.ly s.id lnkd.in bl.ink soo.gd clck.ru u.to x.co po.st shorte.st ouo.io bc.vc tr.im"
)
# TLDs that carry a large share of abuse in public domain-reputation reports (cheap or free to register).
SUSPICIOUS_TLDS = _words(
    "xyz top click link loan work tk ml ga cf gq pw icu buzz bid win vip cyou rest fit gdn men date racing "
    "review stream trade download accountant cricket science party faith kim mom zip mov cam monster"
)
FREE_MAIL = _words(
    "gmail.com googlemail.com yahoo.com yahoo.co.uk hotmail.com outlook.com live.com msn.com aol.com "
    "icloud.com me.com mail.com gmx.com gmx.de gmx.net web.de mail.ru yandex.ru yandex.com qq.com 163.com "
    "126.com proton.me protonmail.com zoho.com rediffmail.com"
)
MESSENGER_HOSTS = _words("wa.me t.me telegram.me chat.whatsapp.com api.whatsapp.com signal.me u.wechat.com")
# Words that turn a person's name into an advert ("Best Casino Bonus", "cheap pills").
COMMERCIAL_WORDS = _words(
    "casino poker bet betting slots loan loans cash money earn income profit seo marketing promo promotion "
    "cheap buy sale discount deal deals pills viagra cialis pharmacy meds essay essays writing writer crypto "
    "bitcoin btc forex invest investment trading trader porn sex xxx dating girls free best online shop store "
    "service services repair support agency hack cheats gift winner rich followers likes views subscribe "
    "channel official"
)

_EMAIL = re.compile(r"[\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){0,4}\.[a-z]{2,24}\b", re.I)
# A phone number: optional +, then 8-15 digits with the usual separators (bounded, no nesting).
_PHONE = re.compile(r"(?<![\w+])\+?\(?\d[\d\s().-]{6,22}\d(?!\w)")
_MESSENGER = re.compile(
    r"\b(?:wh?ats\s?app?|telegram|wechat|we\s?chat|viber|kik|snapchat|skype|signal\s(?:app|me|@|\+)|icq)\b", re.I
)
_HANDLE = re.compile(r"(?<![\w@.])@[A-Za-z_][A-Za-z0-9_.]{2,31}")
# Self-promotion in words, no link needed: "check out my channel", "sub to me", "visit my page",
# "search DHG SONGS on youtube", and requests for likes below: the commonest families of spam the model
# missed when a YouTube video was held out (docs/experiments.md: Self-promotion and asks-for-likes signals:
# both kept).
_PROMO_NOUN = (
    r"(?:channel|chanel|channels|vids?|videos?|vlogs?|page|blog|music|songs?|tracks?|playlists?|covers?|raps?"
    r"|beats?|mixtape|albums?|website|site|account|profile|stuff|content|work)"
)
_SELF_PROMOTION = re.compile(
    r"\b(?:my|our)\s(?:(?:new|latest|first|own|youtube|yt|official|music|gaming|rap|cover|little)\s){0,2}"
    + _PROMO_NOUN
    + r"\b"
    r"|\b(?:sub|subs|subscribe|subscribing|follow)\s(?:to\s|2\s|on\s)?(?:me|us|my|our)\b"
    r"|\b(?:check|visit|watch|listen\sto)\s(?:out\s)?(?:me|my|our)\b"
    r"|\b(?:search|type|look\sup|google)\s(?:[^\s.!?]{1,30}\s){1,6}(?:on|in|into)\s(?:youtube|google)\b",
    re.I,
)
# Requests for likes, shares or thumbs up: "like this comment if...", "thumbs up if you...", "share this".
_ASKS_FOR_LIKES = re.compile(
    r"\b(?:like|thumbs?\s?up|upvote|share)\s(?:this|my)\s(?:comment|post|video|page|channel)\b"
    r"|\b(?:like|thumbs?\s?up|upvote)\s(?:if|so|and\s(?:share|subscribe))\b"
    r"|\bgive\s(?:it|this|me)\s(?:a\s)?(?:like|thumbs?\s?up)\b",
    re.I,
)
# Claims of money earned, won, lent or returned: "I earn $5,000 a week", "loans up to $10,000", "$700 became
# $9,200", "$35/hr", "30% profit". A price alone ("it costs $30", "we pay £140 a month") is not one: an
# amount counts only after a word of earning, or as an hourly or daily rate, a growth or a prize.
_AMOUNT = (
    r"(?:(?:[$€£₹₦]|R\$)\s?\d[\d,.]{0,15}(?:\s?[kK]\b|\s(?:thousand|million|grand)\b)?"
    r"|\d[\d,.]{0,15}\s?(?:[kK]\s?)?(?:[$€£₹₦]|usd\b|eur\b|dollars?\b|dólares\b|euros?\b|pounds\b|bucks\b|btc\b"
    r"|usdt\b|rupees\b|naira\b|reais\b))"
)
# Each amount is found first (the pattern starts with a sign or a digit, so the search skips ahead in C);
# then the few words just before it are looked up for a word of earning, and the words after it read for a
# rate, a growth or a prize. Searching the whole text for the earning words cost ten times as much
# (docs/experiments.md: Money claims read around each amount).
_MONEY_AMOUNT = re.compile(_AMOUNT, re.I)
_EARNING_WORDS = frozenset(
    {"earn", "earns", "earned", "earning", "earnings", "make", "makes", "making", "made", "profit", "profits"}
    | {"income", "withdraw", "withdrew", "withdrawn", "withdrawal", "payout", "return", "returns", "roi"}
    | {"invest", "invested", "investing", "investment", "loan", "loans", "lend", "lending", "funding", "grant"}
    | {"credited", "receive", "received", "receiving", "won", "win", "winning", "bonus", "claim", "claimed"}
    | {"giveaway", "prize", "reward", "salary", "verdiene", "verdient", "gewonnen", "gagné", "gagne", "gané"}
    | {"gano", "ganhei", "ganho", "guadagnato", "kazandım", "заработал", "заработала", "заработок", "заработать"}
)
_EARNING_PAIRS = frozenset(
    {"paid me", "pays me", "cash out", "cashed out", "get paid", "got paid", "giving away", "give away"}
    | {"check for", "cheque for", "paid daily"}
)
# Words an earning word may stand before the amount at most: "earned over the last year $5,000".
_EARNING_REACH = 6
_MONEY_WORD = re.compile(r"[^\W\d_]+")
_CLAIM_AFTER = re.compile(
    rf"(?:\s?-\s?{_AMOUNT})?\s?(?:(?:/|a|an|per|every|each)\s?(?:hour|hr|day)\b|daily\b)"
    rf"|\s(?:into|became|becomes|turned\sinto|grew\sto|->|→)\s{_AMOUNT}"
    r"|\s(?:profit|return|returns|investment|income|earnings|payout|bonus|prize|reward|gift\scard)\b",
    re.I,
)
_PERCENT_CLAIM = re.compile(
    r"\d{1,4}\s?%\s(?:profit|returns?|roi|daily|weekly|monthly|guaranteed)\b"
    r"|\b(?:profit|returns?|roi)\s(?:of\s)?\d{1,4}\s?%",
    re.I,
)
# What every amount or percentage holds besides a digit; most comments have none of it.
_MONEY_SIGN = re.compile("[$€£₹₦%]")
_MONEY_WORDS = ("usd", "eur", "dollar", "dólar", "pound", "buck", "btc", "rupee", "naira", "reais")


def _money_claims(text: str, digits: int) -> int:
    """How many amounts in `text` (which holds `digits` digits) are claimed as earned, won, lent, returned
    or paid per hour or day, plus the percentages claimed as profit."""
    if not digits:  # every amount and percentage has one
        return 0
    if not _MONEY_SIGN.search(text):
        lowered = text.lower()
        if not any(word in lowered for word in _MONEY_WORDS):
            return 0
    claims = 0
    for amount in _MONEY_AMOUNT.finditer(text):
        if _earning_before(text, amount.start()) or _CLAIM_AFTER.match(text, amount.end()):
            claims += 1
    if "%" in text:
        claims += len(_PERCENT_CLAIM.findall(text))
    return claims


def _earning_before(text: str, end: int) -> bool:
    """Whether one of the `_EARNING_REACH` words before position `end` of `text`, with no number between it
    and `end`, is a word (or pair of words) of earning."""
    before = text[max(0, end - 20 * _EARNING_REACH) : end]
    for mark in "0123456789":  # a number in between belongs to another amount
        before = before.rpartition(mark)[2]
    words = _MONEY_WORD.findall(before.lower())[-_EARNING_REACH:]
    return any(word in _EARNING_WORDS for word in words) or any(
        f"{first} {second}" in _EARNING_PAIRS for first, second in pairwise(words)
    )


_EMOJI = re.compile("[\U0001f000-\U0001faff\u2600-\u27bf\u2b00-\u2bff]")
_DIGIT = re.compile(r"\d")
_UPPER = re.compile(r"[A-ZÀ-ÖØ-ÞА-ЯΑ-Ω]")
_LETTER = re.compile(r"[^\W\d_]")
# The ASCII characters each of those one-character patterns matches (a test checks all 128 against them).
_ASCII_DIGITS = string.digits.encode("ascii")
_ASCII_UPPER = string.ascii_uppercase.encode("ascii")
_ASCII_LETTERS = string.ascii_letters.encode("ascii")
_URLISH = re.compile(r"https?://|www\.|\.(?:com|net|org|info|xyz|top|ru|biz|co)\b", re.I)
_SHOWN_DOMAIN = re.compile(r"(?:https?://)?(?:[\w-]{1,63}\.){1,4}[a-z]{2,24}\b", re.I)

SIGNAL_NAMES: tuple[str, ...] = (
    "url_count",
    "url_domains",
    "url_shortener",
    "url_suspicious_tld",
    "url_ip_host",
    "url_text_mismatch",
    "url_messenger",
    "url_this_page",
    "email_count",
    "phone_count",
    "messenger_mention",
    "handle_count",
    "self_promotion",
    "asks_for_likes",
    "author_many_words",
    "author_commercial",
    "author_digits",
    "author_url_in_name",
    "author_url_present",
    "author_url_suspicious_tld",
    "author_email_free",
    "author_email_disposable",
    "user_agent_missing",
    "submit_under_3s",
    "submit_3_to_10s",
    "submit_over_1h",
    "caps_ratio",
    "emoji_density",
    "digit_ratio",
    "length_short",
    "length_long",
    "length_very_long",
    "contact_disguised",
    "money_claim",
    "off_topic",
)

_SIGNAL_SET = frozenset(SIGNAL_NAMES)

# The signal columns of a `CommentFeatures` fitted before it recorded its own (`signal_names_`): the
# layout of every artifact saved before "url_this_page", "self_promotion" and "asks_for_likes" were
# added. Such a model keeps scoring with exactly the columns it was trained on.
SIGNALS_BEFORE_RECORDED_LAYOUT: tuple[str, ...] = tuple(
    name for name in SIGNAL_NAMES if name not in {"url_this_page", "self_promotion", "asks_for_likes"}
)


def extract_signals(comment: Comment) -> dict[str, float]:
    """Return every signal in `SIGNAL_NAMES` for `comment` (counts as log1p, flags 0/1, ratios 0..1)."""
    text = normalize(comment.content)
    revealed = reveal_contacts(text)
    surface = surface_tokens(revealed) if comment.page_context else []
    return _signals(comment, text, revealed, surface)


def _signals(comment: Comment, text: str, revealed: str, surface: Sequence[str]) -> dict[str, float]:
    """Signals of `comment` whose content is normalised to `text`, with its disguised contacts revealed in
    `revealed` (`reveal_contacts`; the same object when there are none) and `surface` its revealed tokens
    (read only when the comment has a page context)."""
    s = dict.fromkeys(SIGNAL_NAMES, 0.0)
    links = extract_links(comment.content)
    hidden: list[Link] = []
    if revealed is not text:  # links that only the revealed text shows ("shop(dot)com") count as links too
        hidden = _hidden_links(text, revealed)
        links += hidden
    # Ham links to its own page ("best part youtube.com/watch?v=<this video>&t=2m19s"): such links get a
    # signal of their own and stay out of the link counts and the words (docs/experiments.md: Links to the
    # comment's own page: a signal, out of the link counts and the words).
    if links and comment.permalink:
        here = [link for link in links if same_page(link.url, comment.permalink)]
        s["url_this_page"] = _log_count(here)
        links = [link for link in links if link not in here]  # a link back to the page advertises nothing
    if links:
        _link_signals(links, s)
    digits = _count_matching(text, _DIGIT, _ASCII_DIGITS)
    contacts = _contacts(text, digits)
    if revealed is not text:
        written = contacts
        contacts = _contacts(revealed, _count_matching(revealed, _DIGIT, _ASCII_DIGITS))
        # Emails, phones and messengers that only the revealed text holds, and its hidden links.
        disguised = len(hidden) + sum(max(0, r - w) for r, w in zip(contacts[1:], written[1:], strict=True))
        s["contact_disguised"] = math.log1p(disguised)
    s["handle_count"], s["email_count"], s["phone_count"], s["messenger_mention"] = map(math.log1p, contacts)
    s["self_promotion"] = math.log1p(len(_SELF_PROMOTION.findall(text)))
    s["asks_for_likes"] = math.log1p(len(_ASKS_FOR_LIKES.findall(text)))
    s["money_claim"] = math.log1p(_money_claims(text, digits))
    if comment.page_context:
        s["off_topic"] = _off_topic(comment.page_context, surface)
    _author_signals(comment, s)
    if comment.user_agent == "":  # None means the site did not tell us: no signal either way
        s["user_agent_missing"] = 1.0
    seconds = comment.seconds_to_submit
    if seconds is not None:
        s["submit_under_3s"] = float(seconds < 3)
        s["submit_3_to_10s"] = float(3 <= seconds < 10)
        s["submit_over_1h"] = float(seconds >= 3600)
    _shape_signals(text, digits, s)
    return s


def _contacts(text: str, digits: int) -> tuple[int, int, int, int]:
    """How many @handles, emails, phone numbers and messenger mentions `text` (holding `digits` digits) has."""
    # Each pattern below runs only when the text holds what every match of it must contain: an "@" for an
    # email or a handle, 8 digits for a phone number; most comments have neither (docs/experiments.md:
    # Email, handle and phone scans only when the text can match).
    handles = emails = phones = 0
    if "@" in text:
        emails = len(_EMAIL.findall(text))
        handles = len(_HANDLE.findall(text))
    if digits >= 8:
        phones = sum(1 for p in _PHONE.findall(text) if 8 <= len(_DIGIT.findall(p)) <= 15)
    return handles, emails, phones, len(_MESSENGER.findall(text))


def _hidden_links(text: str, revealed: str) -> list[Link]:
    """The links of `revealed` beyond those of `text` (by host, each counted as often as it appears)."""
    shown = Counter(link.host for link in extract_links(text))
    hidden = []
    for link in extract_links(revealed):
        if shown[link.host]:
            shown[link.host] -= 1
        else:
            hidden.append(link)
    return hidden


# A comment of at least this many distinct content words that shares none with what its page is about
# (title, tags) is off topic: spam written once for every page. Fewer words ("Great post!", "❤️") say
# too little to tell (docs/experiments.md: Off topic from 10 content words).
OFF_TOPIC_MIN_WORDS = 10


def _off_topic(context: tuple[str, ...], surface: Sequence[str]) -> float:
    """1.0 when the comment's tokens `surface` hold `OFF_TOPIC_MIN_WORDS` content words and none of the
    page's; 0.0 otherwise, and when the page context has no content words."""
    topic = _topic_words(context)
    if not topic:
        return 0.0
    words = {stem(token) for token in surface if _is_content_word(token)}
    return float(len(words) >= OFF_TOPIC_MIN_WORDS and words.isdisjoint(topic))


@lru_cache(maxsize=1024)
def _topic_words(context: tuple[str, ...]) -> frozenset[str]:
    """The stemmed content words of a page's title and tags (cached: one page has many comments)."""
    return frozenset(stem(token) for token in surface_tokens(normalize(" ".join(context))) if _is_content_word(token))


def _is_content_word(token: str) -> bool:
    """A token that says what a text is about: three letters or more, not an English function word."""
    return len(token) >= 3 and token.isalpha() and token not in ENGLISH_STOP_WORDS


def _log_count(items: Iterable[object]) -> float:
    return math.log1p(sum(1 for _ in items))


def _link_signals(links: Sequence[Link], s: dict[str, float]) -> None:
    s["url_count"] = math.log1p(len(links))
    s["url_domains"] = math.log1p(len({registered_domain(link.host) for link in links if link.host}))
    s["url_shortener"] = _log_count(link for link in links if link.host in SHORTENERS)
    s["url_suspicious_tld"] = _log_count(link for link in links if _tld(link.host) in SUSPICIOUS_TLDS)
    s["url_ip_host"] = _log_count(link for link in links if _is_ip(link.host))
    s["url_messenger"] = _log_count(link for link in links if link.host in MESSENGER_HOSTS)
    s["url_text_mismatch"] = _log_count(link for link in links if _text_shows_other_domain(link))


def _author_signals(comment: Comment, s: dict[str, float]) -> None:
    name = normalize(comment.author_name[:200])
    if name:
        words = name.lower().split()
        # Real names have one to three words; "Best Cheap Casino Bonus Online" has more.
        s["author_many_words"] = float(len(words) >= 4)
        s["author_commercial"] = _log_count(w for w in words if w.strip(".,!-_") in COMMERCIAL_WORDS)
        s["author_digits"] = float(bool(_DIGIT.search(name)))
        s["author_url_in_name"] = float(bool(_URLISH.search(name)))
    if comment.author_url.strip():
        s["author_url_present"] = 1.0
        s["author_url_suspicious_tld"] = float(_tld(url_host(comment.author_url)) in SUSPICIOUS_TLDS)
    domain = comment.author_email.rpartition("@")[2].strip().lower()
    if domain:
        s["author_email_free"] = float(domain in FREE_MAIL)
        # The list of the `disposable-email-domains` package, kept up to date by its maintainers; a
        # throwaway service's subdomains ("x.mailinator.com") are throwaway too.
        s["author_email_disposable"] = float(domain in DISPOSABLE_MAIL or registered_domain(domain) in DISPOSABLE_MAIL)


def _shape_signals(text: str, digits: int, s: dict[str, float]) -> None:
    """Case, emoji, digit and length signals of normalised `text`, which holds `digits` digits."""
    letters = _count_matching(text, _LETTER, _ASCII_LETTERS)
    if letters >= 5:  # caps ratio of "OK" or "LOL" says nothing
        s["caps_ratio"] = _count_matching(text, _UPPER, _ASCII_UPPER) / letters
    words = max(1, len(text.split()))
    s["emoji_density"] = min(1.0, len(_EMOJI.findall(text)) / words)
    s["digit_ratio"] = digits / max(1, len(text))
    s["length_short"] = float(len(text) < 20)
    s["length_long"] = float(200 <= len(text) < 1000)
    s["length_very_long"] = float(len(text) >= 1000)


def _count_matching(text: str, pattern: re.Pattern[str], ascii_matches: bytes) -> int:
    """How many characters of `text` the one-character `pattern` matches; `ascii_matches` must be the ASCII
    characters it matches. ASCII text (most comments) is counted by deleting those bytes, which is faster
    than collecting every match (docs/experiments.md: ASCII characters counted by deleting bytes)."""
    if text.isascii():
        raw = text.encode("ascii")
        return len(raw) - len(raw.translate(None, ascii_matches))
    return len(pattern.findall(text))


def _tld(host: str) -> str:
    return host.rpartition(".")[2]


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


# The Public Suffix List snapshot tldextract ships (no download: `suffix_list_urls=()`), private
# suffixes included so that two blogs on one hosting platform count as two sites.
_SUFFIXES = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, include_psl_private_domains=True)


@lru_cache(maxsize=4096)
def registered_domain(host: str) -> str:
    """The registrable part of `host` by the Public Suffix List ("shop.example.co.uk" → "example.co.uk");
    the host itself when it has none (an IP address, "localhost")."""
    parts = _SUFFIXES(host.lower())
    return parts.top_domain_under_public_suffix or host.lower()


def _text_shows_other_domain(link: Link) -> bool:
    """True when the link's visible text looks like a domain that differs from where it points."""
    if not link.text or not link.host:
        return False
    shown = _SHOWN_DOMAIN.search(link.text)
    if shown is None:
        return False
    shown_host = url_host(shown.group(0))
    return bool(shown_host) and registered_domain(shown_host) != registered_domain(link.host)


def _count(value: float) -> int:
    """Undo log1p to recover the count a signal was computed from."""
    return round(math.expm1(value))


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


_FLAG_TEXT = {
    "author_many_words": "author name of four or more words",
    "author_digits": "author name contains digits",
    "author_url_in_name": "author name contains a web address",
    "author_url_present": "author gave a website",
    "author_url_suspicious_tld": "author website is on a domain ending often used for spam",
    "author_email_free": "author email is a free webmail address",
    "author_email_disposable": "author email is a disposable address",
    "user_agent_missing": "browser sent no user agent",
    "submit_under_3s": "form submitted less than 3 seconds after it was shown",
    "submit_3_to_10s": "form submitted 3–10 seconds after it was shown",
    "submit_over_1h": "form submitted more than an hour after it was shown",
    "length_short": "very short comment (under 20 characters)",
    "length_long": "long comment (200–1000 characters)",
    "length_very_long": "very long comment (over 1000 characters)",
    "off_topic": "has nothing in common with what the page is about (its title and tags)",
}
_COUNT_TEXT = {
    "url_count": ("link", "{}"),
    "url_domains": ("different linked site", "{}"),
    "url_shortener": ("link", "{} to a URL shortener"),
    "url_suspicious_tld": ("link", "{} to a domain ending often used for spam"),
    "url_ip_host": ("link", "{} to a bare IP address"),
    "url_text_mismatch": ("link", "{} whose text shows a different site than it points to"),
    "url_messenger": ("link", "{} to a messenger chat"),
    "url_this_page": ("link", "{} to the page the comment is on (e.g. a time in the video)"),
    "email_count": ("email address", "{} in the text"),
    "phone_count": ("phone number", "{} in the text"),
    "messenger_mention": ("mention", "{} of a messenger app (WhatsApp, Telegram…)"),
    "handle_count": ("@handle", "{}"),
    "self_promotion": ("phrase", "{} promoting the author's own channel or page ('check out my…', 'sub to me')"),
    "asks_for_likes": ("request", "{} for likes, shares or thumbs up"),
    "author_commercial": ("commercial word", "author name with {}"),
    "contact_disguised": (
        "contact",
        "{} written in disguise (spaced-out letters, '(dot)' for '.', symbols inside a name, letters for digits)",
    ),
    "money_claim": ("claim", "{} of money earned, won, lent or paid out"),
}


def describe_signal(name: str, value: float) -> str:
    """Describe signal `name` with the value `extract_signals` gave it, in a moderator's words.

    Raises KeyError for a name not in `SIGNAL_NAMES`."""
    if name not in _SIGNAL_SET:
        raise KeyError(f"unknown signal {name!r}; expected one of {', '.join(SIGNAL_NAMES)}")
    if name in _FLAG_TEXT:
        return _FLAG_TEXT[name]
    if name in _COUNT_TEXT:
        noun, template = _COUNT_TEXT[name]
        return template.format(_plural(_count(value), noun))
    percent = round(100 * value)
    if name == "caps_ratio":
        return f"{percent}% of letters in capitals"
    if name == "emoji_density":
        return f"many emoji ({percent} per 100 words)"
    return f"{percent}% of characters are digits"  # digit_ratio


@dataclass(frozen=True, slots=True)
class Prepared:
    """A comment after the per-comment work every feature family shares (done once per comment)."""

    text: str  # normalised content, case kept
    surface: tuple[str, ...]  # lowercased tokens before stemming
    stems: tuple[str, ...]  # the same tokens stemmed, position by position
    terms: tuple[str, ...]  # word n-grams of the content plus "author:<token>" terms
    chars: str  # lowercased normalised content for character n-grams
    signals: dict[str, float]


def prepare(comment: Comment, ngram_range: tuple[int, int] = (1, 3)) -> Prepared:
    """Normalise and tokenise `comment` once for all feature families."""
    written = normalize(comment.content)
    # The words are read from the revealed text: "w h a t s a p p" is the word "whatsapp" to the model.
    revealed = text = reveal_contacts(written)
    if comment.permalink:  # its signal says it all; the host ("youtu.be") would read as a spam word
        text = drop_links_to(text, comment.permalink)
    surface = surface_tokens(text)
    signals = _signals(comment, written, revealed, surface)
    stems = list(map(stem, surface))
    author = ["author:" + token for token in tokenize(normalize(comment.author_name[:200]))]
    terms = word_ngrams(stems, ngram_range) + author
    return Prepared(text, tuple(surface), tuple(stems), tuple(terms), text.lower(), signals)


def word_ngrams(tokens: Sequence[str], ngram_range: tuple[int, int]) -> list[str]:
    """Return the space-joined n-grams of `tokens` for n in `ngram_range` (inclusive)."""
    low, high = ngram_range
    grams: list[str] = list(tokens) if low == 1 else []
    for n in range(max(2, low), high + 1):
        # The i-th tuple holds tokens[i : i + n]: n shifted copies zipped (zip stops at the shortest, which
        # ends the last n-gram), instead of a slice per n-gram.
        grams.extend(map(" ".join, zip(*(tokens[shift:] for shift in range(n)), strict=False)))
    return grams


def prepared_terms(doc: Prepared) -> tuple[str, ...]:
    """Vectorizer analyzer: a prepared comment's word terms (module-level so models pickle by name)."""
    return doc.terms


def prepared_char_ngrams(doc: Prepared, ngram_range: tuple[int, int] = (3, 5)) -> list[str]:
    """Vectorizer analyzer: character n-grams inside word boundaries, padded with a space (as
    scikit-learn's "char_wb"), of a prepared comment's lowercased text."""
    return char_wb_ngrams(doc.chars.split(), ngram_range)


def char_wb_ngrams(words: Iterable[str], ngram_range: tuple[int, int]) -> list[str]:
    """The character n-grams of each word padded with a space (scikit-learn's "char_wb"), in order."""
    low, high = ngram_range
    grams: list[str] = []
    append = grams.append
    for word in words:
        padded = f" {word} "
        length = len(padded)
        for n in range(low, high + 1):
            if length <= n:  # a short word counts once, whole
                append(padded)
                break
            for start in range(length - n + 1):
                append(padded[start : start + n])
    return grams


class CommentFeatures(TransformerMixin, BaseEstimator):
    """Turn `list[Comment]` into one sparse matrix: word TF-IDF | char TF-IDF | signals.

    Word terms are stemmed uni- to trigrams of the normalised content plus "author:" tokens of the
    author name; character n-grams ("char_wb") are over the lowercased normalised content. Both are
    TF-IDF with l2-normalised rows; vocabularies are bounded by `min_df` and `max_features`.

    The defaults were chosen by leave-one-video-out on the YouTube corpus (docs/experiments.md:
    CommentFeatures defaults: binary word (1, 3)-grams, char (3, 5)-grams, weights 1).
    """

    def __init__(
        self,
        *,
        word_ngram_range: tuple[int, int] = (1, 3),
        word_binary: bool = True,
        word_min_df: int = 2,
        word_max_features: int | None = 20_000,
        char_ngram_range: tuple[int, int] = (3, 5),
        char_min_df: int = 2,
        char_max_features: int | None = 30_000,
        char_weight: float = 1.0,
        signal_weight: float = 1.0,
    ) -> None:
        self.word_ngram_range = word_ngram_range
        self.word_binary = word_binary
        self.word_min_df = word_min_df
        self.word_max_features = word_max_features
        self.char_ngram_range = char_ngram_range
        self.char_min_df = char_min_df
        self.char_max_features = char_max_features
        self.char_weight = char_weight
        self.signal_weight = signal_weight

    @property
    def signal_names(self) -> tuple[str, ...]:
        """The signal columns this transformer was fitted with, in order (see `SIGNALS_BEFORE_RECORDED_LAYOUT`)."""
        return tuple(getattr(self, "signal_names_", SIGNALS_BEFORE_RECORDED_LAYOUT))

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickle, refusing a layout with signals this code does not compute (a model from newer code)."""
        super().__setstate__(state)
        refuse_unknown_signals(self.signal_names, "moderation train")

    def fit(self, X: Sequence[Comment], y: object = None) -> CommentFeatures:
        """Learn both vocabularies and IDF weights from `X` (a sequence of Comment); return self."""
        self.fit_transform(X, y)
        return self

    def fit_transform(self, X: Sequence[Comment], y: object = None, **fit_params: object) -> sp.csr_matrix:
        """Fit on `X` and return its feature matrix (normalises each comment only once)."""
        return self.fit_transform_prepared(self.prepare_many(X))

    def fit_transform_prepared(self, docs: Sequence[Prepared]) -> sp.csr_matrix:
        """Fit on already prepared comments and return their feature matrix."""
        self._check_params()
        self.words_ = TfidfVectorizer(
            analyzer=prepared_terms,
            binary=self.word_binary,
            min_df=self.word_min_df,
            max_features=self.word_max_features,
            sublinear_tf=True,
            dtype=np.float64,
        )
        self.chars_ = TfidfVectorizer(
            analyzer=partial(prepared_char_ngrams, ngram_range=(self.char_ngram_range[0], self.char_ngram_range[1])),
            min_df=self.char_min_df,
            max_features=self.char_max_features,
            sublinear_tf=True,
            dtype=np.float64,
        )
        words = self.words_.fit_transform(docs)
        chars = self.chars_.fit_transform(docs)
        self.n_words_ = words.shape[1]
        self.n_chars_ = chars.shape[1]
        self.signal_names_ = SIGNAL_NAMES
        self.n_features_out_ = self.n_words_ + self.n_chars_ + len(SIGNAL_NAMES)
        self.word_terms_ = self.words_.get_feature_names_out()
        return self._stack(words, chars, docs)

    def transform(self, X: Sequence[Comment]) -> sp.csr_matrix:
        """Return the feature matrix of `X`; raises NotFittedError before `fit`."""
        check_is_fitted(self, "words_")
        return self.transform_prepared(self.prepare_many(X))

    def prepare_many(self, X: Sequence[Comment]) -> list[Prepared]:
        """Validate `X` and prepare each comment; raises TypeError for anything but Comment values."""
        if isinstance(X, (str, Comment)):
            raise TypeError(f"expected a sequence of Comment, found a single {type(X).__name__}")
        docs = []
        for item in X:
            if not isinstance(item, Comment):
                raise TypeError(f"expected Comment values, found {type(item).__name__}")
            docs.append(prepare(item, self.word_ngram_range))
        return docs

    def transform_prepared(self, docs: Sequence[Prepared]) -> sp.csr_matrix:
        """Return the feature matrix of already prepared comments."""
        check_is_fitted(self, "words_")
        return self._stack(self.words_.transform(docs), self.chars_.transform(docs), docs)

    def row(self, doc: Prepared) -> tuple[np.ndarray, np.ndarray]:
        """Return (column indices, values) of one prepared comment, columns ascending: the same numbers as
        `transform_prepared([doc])` without building sparse matrices (the single-comment fast path)."""
        lookup = self._row_lookup()
        word_columns, word_values = lookup.word_row(doc.terms)
        char_columns, char_values = lookup.char_row(doc.chars.split())
        # The few nonzero signals picked in Python: cheaper than numpy's steps for 32 values, and a float
        # product rounds the same in both.
        offset, weight = self.n_words_ + self.n_chars_, self.signal_weight
        signal_columns, signal_values = [], []
        for index, name in enumerate(self.signal_names):
            value = doc.signals[name]
            if value:
                signal_columns.append(offset + index)
                signal_values.append(value * weight)
        columns = np.concatenate([word_columns, char_columns, np.array(signal_columns, dtype=np.intp)])
        values = np.concatenate([word_values, char_values, np.array(signal_values, dtype=np.float64)])
        return columns, values

    def rows(self, docs: Sequence[Prepared]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return the feature matrix of prepared comments as CSR arrays (indptr, column indices, values),
        columns ascending within a row: the numbers of `transform_prepared(docs)` (to rounding), counted in
        C and computed in numpy instead of by scikit-learn's vectorizers, with no matrix objects."""
        lookup = self._row_lookup()
        blocks = [lookup.words(docs), lookup.chars(docs)]
        offset = self.n_words_ + self.n_chars_
        names = self.signal_names
        signals = np.array([[doc.signals[name] for name in names] for doc in docs], dtype=np.float64)
        signals = signals.reshape(len(docs), len(names))
        signal_docs, signal_columns = np.nonzero(signals)
        blocks.append((signal_docs, signal_columns + offset, signals[signal_docs, signal_columns] * self.signal_weight))
        owners = np.concatenate([block[0] for block in blocks])
        order = np.argsort(owners, kind="stable")  # by comment, each block's columns ascending and in block order
        indptr = np.zeros(len(docs) + 1, dtype=np.intp)
        np.cumsum(np.bincount(owners, minlength=len(docs)), out=indptr[1:])
        columns = np.concatenate([block[1] for block in blocks])[order]
        values = np.concatenate([block[2] for block in blocks])[order]
        return indptr, columns, values

    def _row_lookup(self) -> _RowLookup:
        """The tables `rows` reads, derived from the fitted vectorizers on first use (never pickled)."""
        lookup: _RowLookup | None = self.__dict__.get("_row_lookup_cache")
        if lookup is None or lookup.fitted_on is not self.chars_:
            lookup = _RowLookup(self)
            self._row_lookup_cache = lookup
        return lookup

    def __getstate__(self) -> dict[str, Any]:
        """Pickle the fitted state only: the lookup tables of `rows` are derived again after loading."""
        state = super().__getstate__()
        return {key: value for key, value in state.items() if key != "_row_lookup_cache"}

    def _stack(self, words: sp.spmatrix, chars: sp.spmatrix, docs: Sequence[Prepared]) -> sp.csr_matrix:
        names = self.signal_names
        signals = np.array([[doc.signals[name] for name in names] for doc in docs], dtype=np.float64)
        signals = signals.reshape(len(docs), len(names))
        blocks = [words, chars * self.char_weight, sp.csr_matrix(signals * self.signal_weight)]
        return sp.hstack(blocks, format="csr")

    def _check_params(self) -> None:
        for name in ("word_ngram_range", "char_ngram_range"):
            low, high = getattr(self, name)
            if not 1 <= low <= high:
                raise ValueError(f"{name} must be (low, high) with 1 <= low <= high, found {(low, high)}")
        for name in ("char_weight", "signal_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, found {getattr(self, name)}")

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        """Feature names: "word:<term>", "char:<ngram>", "signal:<name>", in column order."""
        check_is_fitted(self, "words_")
        names = [f"word:{t}" for t in self.word_terms_]
        names += [f"char:{t}" for t in self.chars_.get_feature_names_out()]
        names += [f"signal:{n}" for n in self.signal_names]
        return np.asarray(names, dtype=object)

    def feature_kind(self, index: int) -> tuple[str, str]:
        """Return (family, name) of column `index`: ("word", term), ("char", "") or ("signal", name)."""
        check_is_fitted(self, "words_")
        if index < self.n_words_:
            return "word", str(self.word_terms_[index])
        if index < self.n_words_ + self.n_chars_:
            return "char", ""
        return "signal", self.signal_names[index - self.n_words_ - self.n_chars_]


# Words whose character n-gram columns one model remembers for `CommentFeatures.row`: vocabularies are
# Zipfian, so most words of a new comment were seen before and skip their n-grams and look-ups
# (docs/experiments.md: Per-word char n-gram cache of 16,384 words).
ROW_WORD_CACHE = 16_384


class _RowLookup:
    """TF-IDF rows of prepared comments from a fitted word and char vectorizer, counted in C with arithmetic
    in numpy: the values of `TfidfVectorizer.transform` (l2-normalised rows, binary or sublinear TF).
    Each block is (comment of each entry, column, value), sorted by comment then column."""

    def __init__(self, features: CommentFeatures) -> None:
        words, chars = features.words_, features.chars_
        self.fitted_on = chars
        # Python ints: numpy turns a sequence of them into an array several times faster than numpy scalars.
        self.word_vocabulary = {term: int(column) for term, column in words.vocabulary_.items()}
        self.word_idf = np.asarray(words.idf_, dtype=np.float64)
        self.word_binary = bool(words.binary)
        self.char_idf = np.asarray(chars.idf_, dtype=np.float64)
        self.char_offset = int(features.n_words_)
        self.char_weight = float(features.char_weight)
        char_vocabulary = {term: int(column) for term, column in chars.vocabulary_.items()}
        ngram_range = (int(features.char_ngram_range[0]), int(features.char_ngram_range[1]))
        self.char_columns_of: Callable[[str], np.ndarray] = lru_cache(maxsize=ROW_WORD_CACHE)(
            partial(_char_columns, char_vocabulary, ngram_range)
        )

    def word_row(self, terms: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """One comment's word block, columns ascending (`words` for a single comment, in fewer steps)."""
        if self.word_binary:
            # Known columns as a Python set, then sorted: for the ~100 terms of a comment this is faster than
            # the same steps in numpy (docs/experiments.md: Single-comment word columns through a Python set).
            found = set(map(self.word_vocabulary.get, terms, repeat(-1)))
            found.discard(-1)
            ascending = np.array(sorted(found), dtype=np.intp)
            return ascending, _l2(self.word_idf[ascending])
        counts = Counter(terms)
        columns = _columns_of(self.word_vocabulary, counts)
        tf = 1.0 + np.log(np.fromiter(counts.values(), dtype=np.float64, count=len(counts)))
        known = np.flatnonzero(columns >= 0)
        order = known[np.argsort(columns[known])]
        return columns[order], _l2(self.word_idf[columns[order]] * tf[order])

    def char_row(self, words: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """One comment's char block, columns ascending (`chars` for a single comment, in fewer steps)."""
        if not words:
            return _NO_COLUMNS, _NO_VALUES
        columns, counts = _counted(np.concatenate(list(map(self.char_columns_of, words))))
        values = _l2(self.char_idf[columns] * (1.0 + np.log(counts)))
        return columns + self.char_offset, values * self.char_weight

    def words(self, docs: Sequence[Prepared]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The word TF-IDF block: each comment's terms once (binary TF) or counted (sublinear TF)."""
        per_doc: list[Collection[str]] = [set(doc.terms) if self.word_binary else Counter(doc.terms) for doc in docs]
        sizes = np.fromiter(map(len, per_doc), dtype=np.intp, count=len(per_doc))
        terms = list(chain.from_iterable(per_doc))
        columns = _columns_of(self.word_vocabulary, terms)
        owners = np.repeat(np.arange(len(docs)), sizes)
        if self.word_binary:
            tf = np.ones(len(terms))
        else:
            counts = chain.from_iterable(counter.values() for counter in per_doc)  # type: ignore[attr-defined]
            tf = 1.0 + np.log(np.fromiter(counts, dtype=np.float64, count=len(terms)))
        known = columns >= 0
        owners, columns, tf = owners[known], columns[known], tf[known]
        order = np.lexsort((columns, owners))
        owners, columns = owners[order], columns[order]
        return owners, columns, _l2_rows(owners, self.word_idf[columns] * tf[order], len(docs))

    def chars(self, docs: Sequence[Prepared]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The char TF-IDF block (sublinear TF), weighted by `char_weight`, columns after the words'."""
        words = [doc.chars.split() for doc in docs]
        hits = list(map(self.char_columns_of, chain.from_iterable(words)))
        if not hits:
            return _NO_COLUMNS, _NO_COLUMNS, _NO_VALUES
        word_owners = np.repeat(np.arange(len(docs)), np.fromiter(map(len, words), dtype=np.intp, count=len(docs)))
        owners = np.repeat(word_owners, np.fromiter(map(len, hits), dtype=np.intp, count=len(hits)))
        width = len(self.char_idf)
        keys, counts = np.unique(owners * width + np.concatenate(hits), return_counts=True)
        owners, columns = np.divmod(keys, width)
        values = _l2_rows(owners, self.char_idf[columns] * (1.0 + np.log(counts)), len(docs))
        return owners, columns + self.char_offset, values * self.char_weight


def _char_columns(vocabulary: Mapping[str, int], ngram_range: tuple[int, int], word: str) -> np.ndarray:
    """The vocabulary columns of one word's character n-grams, with repeats, unknown n-grams left out."""
    columns = _columns_of(vocabulary, char_wb_ngrams((word,), ngram_range))
    known = columns[columns >= 0]
    known.flags.writeable = False  # shared by every later comment with this word
    return known


def _counted(columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values of `columns`, ascending, and how often each occurs: `np.unique(columns,
    return_counts=True)` without its generic set-up, which dominates on the few hundred n-grams of one
    comment (docs/experiments.md: Counting n-gram columns without np.unique)."""
    ordered = np.sort(columns)
    size = ordered.size
    starts = np.empty(size + 1, dtype=bool)
    starts[0] = starts[size] = True
    np.not_equal(ordered[1:], ordered[:-1], out=starts[1:size])
    bounds = starts.nonzero()[0]
    return ordered[bounds[:-1]], bounds[1:] - bounds[:-1]


def _columns_of(vocabulary: Mapping[str, int], terms: Collection[str]) -> np.ndarray:
    """The column of each term in `vocabulary`, -1 for a term it does not hold."""
    return np.fromiter(map(vocabulary.get, terms, repeat(-1)), dtype=np.intp, count=len(terms))


_NO_COLUMNS = np.zeros(0, dtype=np.intp)
_NO_VALUES = np.zeros(0, dtype=np.float64)


def _l2(values: np.ndarray) -> np.ndarray:
    """`values` divided by their Euclidean norm (unchanged when empty)."""
    return values / np.sqrt(values @ values) if values.size else values


def _l2_rows(owners: np.ndarray, values: np.ndarray, n_rows: int) -> np.ndarray:
    """`values` divided by the Euclidean norm of their row (`owners` says which row each value is in)."""
    norms = np.sqrt(np.bincount(owners, weights=values * values, minlength=n_rows))
    return values / norms[owners]


def refuse_unknown_signals(names: Sequence[str], retrain_command: str) -> None:
    """Raise ModelIntegrityError when a fitted layout uses signals this code does not compute (newer code's model)."""
    unknown = [name for name in names if name not in SIGNAL_NAMES]
    if unknown:
        raise ModelIntegrityError(
            f"the model's features include signals this code does not compute ({', '.join(unknown)}); "
            f"retrain it with `{retrain_command}` or load it with the code that trained it"
        )


def build_features(**params: object) -> CommentFeatures:
    """Return an unfitted `CommentFeatures` with the tuned defaults (override any parameter by keyword)."""
    return CommentFeatures(**params)  # type: ignore[arg-type]


def describe_term(term: str, doc: Prepared | None = None) -> str:
    """Describe a word term in a moderator's words, using the comment's own spelling when `doc` has it."""
    if term.startswith("author:"):
        return f"author name contains '{term[7:]}'"
    shown = _surface_of(term, doc) if doc is not None else term
    return f"{'phrase' if ' ' in term else 'word'} '{shown}'"


def _surface_of(term: str, doc: Prepared) -> str:
    """Find `term` (stemmed n-gram) among the comment's tokens and return it as written."""
    grams = term.split(" ")
    n = len(grams)
    stems = doc.stems
    for i in range(len(stems) - n + 1):
        if list(stems[i : i + n]) == grams:
            return " ".join(doc.surface[i : i + n])
    return term


__all__ = [
    "SIGNALS_BEFORE_RECORDED_LAYOUT",
    "SIGNAL_NAMES",
    "CommentFeatures",
    "Prepared",
    "build_features",
    "describe_signal",
    "describe_term",
    "extract_signals",
    "prepare",
    "registered_domain",
]
