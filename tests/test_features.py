"""Signals, their descriptions, and the CommentFeatures transformer's scikit-learn contract."""

from __future__ import annotations

import math
import pickle
from datetime import UTC, datetime, timedelta
from functools import cache

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from tiny_corpus import TINY_CORPUS

from moderation.comment import Comment
from moderation.core.features import (
    SIGNAL_NAMES,
    SIGNALS_BEFORE_RECORDED_LAYOUT,
    CommentFeatures,
    build_features,
    describe_signal,
    extract_signals,
    prepare,
)
from moderation.errors import ModelIntegrityError


def _comments(corpus):
    return [example.comment for example in corpus]


def test_signals_cover_every_name_and_default_to_zero():
    """A plain comment yields every signal name, all zero except shape ones."""
    signals = extract_signals(Comment("Nice write-up, thank you."))
    assert set(signals) == set(SIGNAL_NAMES)
    assert signals["url_count"] == 0.0
    assert signals["user_agent_missing"] == 0.0


def test_url_signals():
    """Shorteners, IP hosts, suspicious TLDs, distinct domains and mismatched link text are counted."""
    comment = Comment(
        "Win http://bit.ly/a and http://tinyurl.com/b or http://10.0.0.1/x "
        '<a href="http://evil.xyz/login">www.paypal.com</a>'
    )
    signals = extract_signals(comment)
    assert signals["url_count"] == pytest.approx(math.log1p(4))
    assert signals["url_shortener"] == pytest.approx(math.log1p(2))
    assert signals["url_ip_host"] == pytest.approx(math.log1p(1))
    assert signals["url_suspicious_tld"] == pytest.approx(math.log1p(1))
    assert signals["url_text_mismatch"] == pytest.approx(math.log1p(1))
    assert signals["url_domains"] == pytest.approx(math.log1p(4))
    assert describe_signal("url_shortener", signals["url_shortener"]) == "2 links to a URL shortener"


def test_links_to_this_page_are_their_own_signal_not_links_out():
    """A link to the comment's own page counts as "this page", not as a link or a linked site."""
    page = "https://www.youtube.com/watch?v=KQ6zr6kCPj8"
    comment = Comment(
        '<a href="http://www.youtube.com/watch?v=KQ6zr6kCPj8&amp;t=2m19s">2:19</a> best part, '
        "also http://youtu.be/KQ6zr6kCPj8 and http://bit.ly/x",
        permalink=page,
    )
    signals = extract_signals(comment)
    assert signals["url_this_page"] == pytest.approx(math.log1p(2))
    assert signals["url_count"] == pytest.approx(math.log1p(1))
    assert signals["url_shortener"] == pytest.approx(math.log1p(1))
    assert extract_signals(Comment(comment.content))["url_this_page"] == 0.0
    assert describe_signal("url_this_page", signals["url_this_page"]).startswith(
        "2 links to the page the comment is on"
    )


def test_links_to_this_page_leave_the_word_features():
    """The words of a comment do not include the host of a link to its own page, only other hosts."""
    doc = prepare(Comment("2:19 http://youtu.be/KQ6zr6kCPj8 http://bit.ly/x", permalink="https://youtu.be/KQ6zr6kCPj8"))
    assert "youtu.be" not in doc.terms and "bit.ly" in doc.terms


@pytest.mark.parametrize(
    "text",
    [
        "Check out my new channel please",
        "sub to me and I sub back",
        "please visit my page",
        "search DHG SONGS on youtube",
        "listen to my latest track!",
    ],
)
def test_self_promotion_found_without_a_link(text):
    """Promoting one's own channel or page in words is a signal even with no link."""
    assert extract_signals(Comment(text))["self_promotion"] > 0


@pytest.mark.parametrize(
    "text",
    ["This is my favorite song", "you're gonna hear me roar", "I like this song very much", "check the views"],
)
def test_talking_about_the_song_is_not_self_promotion(text):
    """Ordinary fan comments with "my", "me" or "check" raise neither promotion signal."""
    signals = extract_signals(Comment(text))
    assert signals["self_promotion"] == 0.0
    assert signals["asks_for_likes"] == 0.0


def test_asks_for_likes():
    """Requests for likes, thumbs up or shares are counted and described."""
    signals = extract_signals(Comment("Like this comment if you agree! thumbs up if you are here in 2015"))
    assert signals["asks_for_likes"] == pytest.approx(math.log1p(2))
    assert describe_signal("asks_for_likes", signals["asks_for_likes"]) == "2 requests for likes, shares or thumbs up"


def test_contact_signals():
    """Emails, phone numbers and messenger mentions are found in the text."""
    signals = extract_signals(Comment("Mail me at deals@example.com or WhatsApp +44 7700 900123, Telegram @cryptoking"))
    assert signals["email_count"] == pytest.approx(math.log1p(1))
    assert signals["phone_count"] == pytest.approx(math.log1p(1))
    assert signals["messenger_mention"] == pytest.approx(math.log1p(2))
    assert signals["handle_count"] == pytest.approx(math.log1p(1))


# Texts rich in what the contact patterns look for: "@", digits and their separators, emails, handles.
_contact_text = st.lists(
    st.sampled_from(
        ["@", "a@b.co", "@user_1", "+1", "555", "(0)", "-", ".", " ", "1", "12345678", "x", "\uff10", " @ ", "O"]
    )
    | st.just("b.co")
    | st.text(max_size=6),
    max_size=30,
).map("".join)


@settings(max_examples=200, deadline=None)
@given(_contact_text)
def test_contact_signals_equal_the_full_scans(text):
    """Skipping the email and handle scans without an "@" and the phone scan under 8 digits changes no
    count: the signals equal those of every pattern run on every (revealed) text."""
    from moderation.core.features import _DIGIT, _EMAIL, _HANDLE, _PHONE
    from moderation.core.text import normalize, reveal_contacts

    normalized = normalize(text)
    revealed = reveal_contacts(normalized)
    phones = [p for p in _PHONE.findall(revealed) if 8 <= len(_DIGIT.findall(p)) <= 15]
    signals = extract_signals(Comment(text))
    assert signals["email_count"] == math.log1p(len(_EMAIL.findall(revealed)))
    assert signals["handle_count"] == math.log1p(len(_HANDLE.findall(revealed)))
    assert signals["phone_count"] == math.log1p(len(phones))
    assert signals["digit_ratio"] == len(_DIGIT.findall(normalized)) / max(1, len(normalized))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 40), max_size=60))
def test_counted_equals_numpy_unique(values):
    """The single row's n-gram counting gives `np.unique(..., return_counts=True)`, empty input included."""
    from moderation.core.features import _counted

    array = np.array(values, dtype=np.intp)
    columns, counts = _counted(array)
    expected_columns, expected_counts = np.unique(array, return_counts=True)
    np.testing.assert_array_equal(columns, expected_columns)
    np.testing.assert_array_equal(counts, expected_counts)
    assert columns.dtype == expected_columns.dtype and counts.dtype == expected_counts.dtype


def _counted_patterns():
    """(pattern, its ASCII members) of each character count the signals take."""
    from moderation.core import features as module

    return (
        (module._DIGIT, module._ASCII_DIGITS),
        (module._LETTER, module._ASCII_LETTERS),
        (module._UPPER, module._ASCII_UPPER),
    )


def test_ascii_members_of_the_counted_patterns_are_exact():
    """The ASCII sets the character counts delete are exactly the ASCII characters each pattern matches."""
    for pattern, members in _counted_patterns():
        assert {chr(i) for i in range(128) if pattern.fullmatch(chr(i))} == set(members.decode("ascii"))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60) | st.text(st.characters(max_codepoint=127), max_size=60))
def test_character_counts_equal_findall(text):
    """Counting digits, letters and capitals gives len(findall) on ASCII and other text alike."""
    from moderation.core.features import _count_matching

    for pattern, members in _counted_patterns():
        assert _count_matching(text, pattern, members) == len(pattern.findall(text))


def test_author_signals():
    """Keyword-stuffed names, URLs in names, author URL TLDs and email domains become signals."""
    stuffed = extract_signals(
        Comment(
            "hi", author_name="Best Cheap Casino Bonus 2024", author_url="http://win.top", author_email="a@yopmail.com"
        )
    )
    assert stuffed["author_many_words"] == 1.0
    assert stuffed["author_commercial"] == pytest.approx(math.log1p(3))
    assert stuffed["author_digits"] == 1.0
    assert stuffed["author_url_present"] == 1.0
    assert stuffed["author_url_suspicious_tld"] == 1.0
    assert stuffed["author_email_disposable"] == 1.0
    named = extract_signals(Comment("hi", author_name="Marie Curie", author_email="marie@gmail.com"))
    assert named["author_many_words"] == 0.0 and named["author_commercial"] == 0.0
    assert named["author_email_free"] == 1.0
    assert extract_signals(Comment("hi", author_name="visit shop.com"))["author_url_in_name"] == 1.0


def test_user_agent_missing_only_when_sent_empty():
    """An empty user agent is a signal; an unknown one (None) is not."""
    assert extract_signals(Comment("hi", user_agent=""))["user_agent_missing"] == 1.0
    assert extract_signals(Comment("hi", user_agent=None))["user_agent_missing"] == 0.0


def test_seconds_to_submit_buckets():
    """Time from form render to submit falls into one bucket, and none when unknown."""
    rendered = datetime(2026, 1, 1, tzinfo=UTC)
    fast = extract_signals(Comment("hi", rendered_at=rendered, submitted_at=rendered + timedelta(seconds=1)))
    assert fast["submit_under_3s"] == 1.0 and fast["submit_3_to_10s"] == 0.0
    stale = extract_signals(Comment("hi", rendered_at=rendered, submitted_at=rendered + timedelta(hours=2)))
    assert stale["submit_over_1h"] == 1.0
    assert extract_signals(Comment("hi"))["submit_under_3s"] == 0.0


def test_shape_signals():
    """Caps ratio, emoji density, digit ratio and length buckets describe the text's shape."""
    signals = extract_signals(Comment("BUY NOW 😀😀 100"))
    assert signals["caps_ratio"] == 1.0
    assert 0 < signals["emoji_density"] <= 1
    assert 0 < signals["digit_ratio"] < 1
    assert signals["length_short"] == 1.0
    assert extract_signals(Comment("word " * 300))["length_very_long"] == 1.0


def test_describe_signal_in_words():
    """Every signal has a description; unknown names raise KeyError."""
    for name in SIGNAL_NAMES:
        assert describe_signal(name, math.log1p(3)).strip()
    assert describe_signal("url_count", math.log1p(1)) == "1 link"
    assert describe_signal("phone_count", math.log1p(2)) == "2 phone numbers in the text"
    with pytest.raises(KeyError):
        describe_signal("no_such_signal", 1.0)


@settings(max_examples=100, deadline=None)
@given(content=st.text(max_size=2000), author=st.text(max_size=200), email=st.text(max_size=50))
def test_signals_never_raise_and_stay_bounded(content, author, email):
    """On arbitrary fields, every signal is finite and within [0, log1p(MAX_CHARS)]."""
    signals = extract_signals(Comment(content, author_name=author, author_email=email, author_url=author))
    assert set(signals) == set(SIGNAL_NAMES)
    assert all(0.0 <= value <= math.log1p(20_000) for value in signals.values())


def test_not_fitted_error_before_fit():
    """Transforming before fitting raises scikit-learn's NotFittedError."""
    with pytest.raises(NotFittedError):
        CommentFeatures().transform([Comment("hello")])


def test_rejects_anything_but_comments():
    """Strings instead of Comment values are refused with a TypeError that says what was found."""
    with pytest.raises(TypeError, match="str"):
        build_features().fit(["plain text"])


def test_fit_twice_gives_same_result(tiny_corpus):
    """Fitting twice on the same data gives the same matrix."""
    comments = _comments(tiny_corpus)
    features = build_features(word_min_df=1, char_min_df=1)
    first = features.fit(comments).transform(comments).toarray()
    second = features.fit(comments).transform(comments).toarray()
    np.testing.assert_array_equal(first, second)


def test_fit_transform_matches_transform_and_row(tiny_corpus):
    """fit_transform, transform, the batch fast path and the single-row fast path give the same numbers."""
    comments = _comments(tiny_corpus)
    features = build_features(word_min_df=1, char_min_df=1)
    fitted = features.fit_transform(comments).toarray()
    np.testing.assert_allclose(fitted, features.transform(comments).toarray())
    docs = features.prepare_many([Comment(""), *comments])
    indptr, columns, values = features.rows(docs)
    fast = sp.csr_matrix((values, columns, indptr), shape=(len(docs), features.n_features_out_))
    assert fast.has_sorted_indices
    np.testing.assert_allclose(
        fast.toarray(), np.vstack([features.transform_prepared(docs[:1]).toarray(), fitted]), atol=1e-15
    )
    for i, doc in enumerate(docs[1:]):
        assert_row_matches(features, doc, fitted[i])


def assert_row_matches(features, doc, expected=None):
    """`features.row(doc)` holds exactly the nonzero columns of the batch row, ascending, with its values."""
    if expected is None:
        expected = features.transform_prepared([doc]).toarray()[0]
    columns, values = features.row(doc)
    np.testing.assert_array_equal(columns, np.flatnonzero(expected))
    np.testing.assert_allclose(values, expected[columns], rtol=1e-12, atol=1e-15)


# Odd texts for the fast path: repeats (counts above 1), case, look-alikes, emoji, markup, long words.
_odd_text = st.lists(
    st.sampled_from(
        ["spam", "SPAM", "subscribe", "my", "channel", "ok", "a", "😀", "ѕрам", "<b>x</b>", "http://bit.ly/a"]
    )
    | st.text(max_size=30),
    max_size=40,
).map(" ".join)


@settings(max_examples=150, deadline=None)
@given(content=_odd_text, author=st.text(max_size=40))
def test_row_matches_transform_on_odd_texts(content, author):
    """On arbitrary text and authors the single-row fast path equals `transform_prepared`, with binary
    and counted word terms alike, and again when the same words come back from its cache."""
    for features in _fitted_for_rows():
        doc = prepare(Comment(content, author_name=author))
        assert_row_matches(features, doc)
        assert_row_matches(features, doc)


@cache
def _fitted_for_rows() -> tuple[CommentFeatures, ...]:
    """Transformers fitted once for the property test: binary word TF (the default) and counted word TF."""
    comments = _comments(TINY_CORPUS)
    return tuple(build_features(word_min_df=1, char_min_df=1, word_binary=b).fit(comments) for b in (True, False))


def test_row_follows_a_refit_and_its_tables_stay_out_of_pickles(tiny_corpus):
    """After a refit on other comments the fast path uses the new vocabulary, and a pickle carries no
    tables derived for it (they are rebuilt after loading)."""
    comments = _comments(tiny_corpus)
    features = build_features(word_min_df=1, char_min_df=1).fit(comments[:6])
    doc = features.prepare_many(comments[-1:])[0]
    features.row(doc)
    features.fit(comments[6:])
    assert_row_matches(features, doc)
    payload = pickle.dumps(features)
    assert b"_row_lookup" not in payload
    assert_row_matches(pickle.loads(payload), doc)


def test_clone_gives_unfitted_copy_with_same_params(tiny_corpus):
    """sklearn.base.clone copies parameters and leaves the copy unfitted."""
    features = build_features(char_weight=0.5).fit(_comments(tiny_corpus))
    copy = clone(features)
    assert copy.get_params() == features.get_params()
    with pytest.raises(NotFittedError):
        copy.transform([Comment("hello")])


@pytest.mark.parametrize("dump", ["pickle", "joblib"])
def test_pickle_round_trip_gives_identical_matrix(tiny_corpus, tmp_path, dump):
    """A pickled or joblib-saved transformer transforms exactly as the original."""
    comments = _comments(tiny_corpus)
    features = build_features(word_min_df=1).fit(comments)
    if dump == "pickle":
        restored = pickle.loads(pickle.dumps(features))
    else:
        joblib.dump(features, tmp_path / "features.joblib")
        restored = joblib.load(tmp_path / "features.joblib")
    np.testing.assert_array_equal(restored.transform(comments).toarray(), features.transform(comments).toarray())


def test_feature_names_and_kinds(tiny_corpus):
    """Feature names cover every column, and column kinds read back as word, char or signal."""
    features = build_features(word_min_df=1).fit(_comments(tiny_corpus))
    names = features.get_feature_names_out()
    assert len(names) == features.n_features_out_
    assert names[-1] == f"signal:{SIGNAL_NAMES[-1]}"
    assert features.feature_kind(0)[0] == "word"
    assert features.feature_kind(features.n_words_) == ("char", "")
    assert features.feature_kind(features.n_features_out_ - 1) == ("signal", SIGNAL_NAMES[-1])
    assert any(name.startswith("word:author:") for name in names)


def test_invalid_params_raise_on_fit(tiny_corpus):
    """A nonsensical n-gram range is refused at fit time, with the value found in the message."""
    with pytest.raises(ValueError, match=r"\(3, 1\)"):
        build_features(char_ngram_range=(3, 1)).fit(_comments(tiny_corpus))


def test_transformer_fitted_before_layout_was_recorded_keeps_its_columns(tiny_corpus):
    """A transformer without `signal_names_` (pickled by older code) yields the signal columns it had then."""
    comments = _comments(tiny_corpus)
    features = build_features(word_min_df=1).fit(comments)
    assert features.signal_names == SIGNAL_NAMES
    del features.signal_names_
    restored = pickle.loads(pickle.dumps(features))
    matrix = restored.transform(comments)
    assert matrix.shape[1] == restored.n_words_ + restored.n_chars_ + len(SIGNALS_BEFORE_RECORDED_LAYOUT)
    assert restored.get_feature_names_out()[-1] == f"signal:{SIGNALS_BEFORE_RECORDED_LAYOUT[-1]}"
    columns, values = restored.row(restored.prepare_many(comments[:1])[0])
    np.testing.assert_allclose(matrix[0].toarray().ravel()[columns], values)


def test_unpickling_refuses_signals_this_code_does_not_compute(tiny_corpus):
    """A transformer fitted with a signal unknown here (newer code) is refused with a clear message."""
    features = build_features(word_min_df=1).fit(_comments(tiny_corpus))
    features.signal_names_ = (*SIGNAL_NAMES, "from_the_future")
    payload = pickle.dumps(features)
    with pytest.raises(ModelIntegrityError, match="from_the_future"):
        pickle.loads(payload)


@pytest.mark.parametrize(
    ("text", "shown_as"),
    [
        ("so true 😂 ♥hotgirls24.netk♥", "url_count"),
        ("Thanks for sharing. example(dot)com", "url_count"),
        ("great read, more at b e s t d e a l s . s h o p", "url_count"),
        ("Mrs. Ellen Hart helped me, ask her on w h a t s a p p", "messenger_mention"),
        ("wh❤️ats❤️app me for details", "messenger_mention"),
        ("Good explanation. +1 (8OO) 555-0199", "phone_count"),
        ("info: anna.k [at] outlook [dot] com", "email_count"),
    ],
)
def test_disguised_contacts_are_counted_and_flagged(text, shown_as):
    """A contact written in disguise counts as the link, messenger, phone or email it is, and as disguised."""
    signals = extract_signals(Comment(text))
    assert signals["contact_disguised"] == pytest.approx(math.log1p(1))
    assert signals[shown_as] == pytest.approx(math.log1p(1))
    assert describe_signal("contact_disguised", signals["contact_disguised"]).startswith(
        "1 contact written in disguise"
    )


def test_plainly_written_contacts_are_not_disguised():
    """Links, emails, phones and messengers written plainly (or an email in a sentence) are not disguised."""
    for text in (
        "Mail me at deals@example.com or WhatsApp +44 7700 900123, Telegram @cryptoking, http://x.example",
        "If you find a bug, please write to support@python.org with the traceback.",
        "Dr. J. Smith wrote the original paper; see p. 42 and the dot com era chapter",
    ):
        assert extract_signals(Comment(text))["contact_disguised"] == 0.0, text


@pytest.mark.parametrize(
    "text",
    [
        "I earn $5,000 a week working from home",
        "Bad credit loans up to $10,000, approval in 5 minutes",
        "$700 investment became $9,200 in 10 days",
        "she turned my $1k into $9,800",
        "Remote data entry, $35/hr, weekly pay",
        "40% profit weekly with my account manager",
        "You won a £1000 cash prize, text CLAIM to 80082",
        "Ich verdiene jetzt 3.000€ pro Woche mit Krypto",
    ],
)
def test_money_claims(text):
    """Earnings, loans, growth, rates, prizes and profit percentages are money claims."""
    signals = extract_signals(Comment(text))
    assert signals["money_claim"] > 0
    assert describe_signal("money_claim", math.log1p(1)) == "1 claim of money earned, won, lent or paid out"


@pytest.mark.parametrize(
    "text",
    [
        "I paid $30 for mine and it broke after a week, the $80 model is much better",
        "We pay £140 a month privately for his medication now.",
        "Upfront was about $180, but I was spending $60/month on pods",
        "Prices went up 5% this year, and the tickets were $50 each",
    ],
)
def test_prices_discussed_honestly_are_not_money_claims(text):
    """A price, a bill or a rise in prices is not a claim of money earned."""
    assert extract_signals(Comment(text))["money_claim"] == 0.0


_PAGE = ("How to repot a fiddle leaf fig", "houseplants", "gardening")


def test_off_topic_when_a_long_comment_shares_nothing_with_the_page():
    """A comment of many words with none of the page's title or tags is off topic, and says so."""
    filler = Comment(
        "Making money online is easier than ever with the right strategy, thousands of people already earn "
        "a second income every single month from their phones",
        page_context=_PAGE,
    )
    signals = extract_signals(filler)
    assert signals["off_topic"] == 1.0
    assert describe_signal("off_topic", 1.0) == (
        "has nothing in common with what the page is about (its title and tags)"
    )


def test_on_topic_short_or_contextless_comments_are_not_off_topic():
    """A comment naming the page's subject, a short one, or one whose site sent no context is never off topic."""
    on_topic = "I repotted mine last spring into a slightly bigger pot and the fig doubled its leaves since then"
    elsewhere = "Making money online is easier than ever with the right strategy, thousands earn a second income"
    assert extract_signals(Comment(on_topic, page_context=_PAGE))["off_topic"] == 0.0
    assert extract_signals(Comment("Great post, thanks!", page_context=_PAGE))["off_topic"] == 0.0
    assert extract_signals(Comment(elsewhere))["off_topic"] == 0.0
    assert extract_signals(Comment(elsewhere, page_context=("the", "")))["off_topic"] == 0.0


def test_prepared_words_read_the_revealed_text_and_signals_see_the_page():
    """The model's words hold "whatsapp" for "w h a t s a p p", and a prepared comment's signals its page."""
    doc = prepare(Comment("ask her on w h a t s a p p", page_context=_PAGE))
    assert "whatsapp" in doc.terms and "w" not in doc.terms
    assert doc.signals["contact_disguised"] > 0


def test_disposable_author_email_comes_from_the_maintained_list():
    """A throwaway address (the disposable-email-domains list, its subdomains too) is flagged; webmail is not."""
    for email in ("a@mailinator.com", "b@guerrillamail.com", "c@x.mailinator.com", "d@10minutemail.com"):
        assert extract_signals(Comment("hi", author_email=email))["author_email_disposable"] == 1.0, email
    for email in ("e@gmail.com", "f@example.org"):
        assert extract_signals(Comment("hi", author_email=email))["author_email_disposable"] == 0.0, email
