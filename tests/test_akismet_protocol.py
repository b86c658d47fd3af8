"""The Akismet protocol layer without a server: form decoding, key discovery, comment fields, test triggers."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote, urlencode

import pytest

from moderation.comment import Decision
from moderation.web.akismet import (
    akismet_trigger,
    key_from_host,
    key_sites_csv,
    missing_field,
    month_bounds,
    parse_comment,
    parse_params,
    request_key,
    stats_window,
    text_codec,
)


def test_parse_params_reads_query_and_body_in_order():
    """Query-string values come first, body values after, blank values kept."""
    params = parse_params(b"api_key=abc&x=1", b"x=2&empty=")
    assert params == {"api_key": ["abc"], "x": ["1", "2"], "empty": [""]}


@pytest.mark.parametrize(
    ("charset", "text"),
    [
        ("ISO-8859-1", "Très bien, ça marche"),
        ("Windows-1252", "“Smart quotes” cost 5 €"),
        ("Shift_JIS", "日本語のコメントです"),
        ("EUC-KR", "좋은 글 감사합니다"),
    ],
)
def test_blog_charset_decodes_percent_escaped_values(charset, text):
    """A value percent-encoded in the site's charset decodes to the same text."""
    body = urlencode({"blog_charset": charset, "comment_content": text}, encoding=charset).encode("ascii")
    assert parse_params(body)["comment_content"] == [text]


def test_blog_charset_decodes_raw_eight_bit_bytes():
    """Raw (unescaped) 8-bit bytes in the declared charset decode too."""
    body = b"blog_charset=ISO-8859-1&comment_author=Ren\xe9e"
    assert parse_params(body)["comment_author"] == ["Renée"]


def test_content_type_charset_is_used_when_blog_charset_is_absent():
    """WordPress also names its charset in the Content-Type header."""
    body = b"comment_content=" + quote("Grüße", encoding="latin-1").encode()
    assert parse_params(body, content_type_charset="iso-8859-1")["comment_content"] == ["Grüße"]


def test_utf8_sent_under_a_wrong_label_falls_back_to_utf8():
    """Bytes that are not valid in the declared charset are tried as UTF-8."""
    body = b"blog_charset=Shift_JIS&comment_content=" + quote("née 🎉").encode()
    assert parse_params(body)["comment_content"] == ["née 🎉"]


def test_undecodable_bytes_become_replacement_characters():
    """Garbage never raises: what cannot be decoded is replaced."""
    body = b"blog_charset=UTF-8&comment_content=ok%FF%FE"
    assert parse_params(body)["comment_content"][0].startswith("ok")


@pytest.mark.parametrize(
    ("label", "codec"),
    [("UTF-8", "utf-8"), ("iso-8859-1", "cp1252"), ("latin1", "cp1252"), ("Shift_JIS", "shift_jis"),
     ("no-such-charset", "utf-8"), ("base64", "utf-8"), ("rot13", "utf-8"), ("", "utf-8"), (None, "utf-8")],
)
def test_text_codec_maps_labels_and_refuses_non_text_codecs(label, codec):
    """Latin-1 labels decode as windows-1252 (as browsers do); unknown or bytes-to-bytes codecs mean UTF-8."""
    assert text_codec(label) == codec


def test_parse_comment_maps_every_documented_parameter():
    """Documented fields land in the Comment or in extra; content_type aliases comment_type."""
    params = parse_params(
        urlencode(
            {
                "blog": "https://blog.example",
                "user_ip": "203.0.113.7",
                "user_agent": "Mozilla/5.0",
                "referrer": "https://blog.example/post",
                "permalink": "https://blog.example/post/1",
                "content_type": "forum-post",
                "comment_author": "Dana",
                "comment_author_email": "dana@example.org",
                "comment_author_url": "https://dana.example",
                "comment_content": "Nice write-up.",
                "comment_date_gmt": "2026-11-28 10:00:00",
                "comment_post_modified_gmt": "2026-11-01T09:00:00Z",
                "blog_lang": "en_us, fr_fr",
                "blog_charset": "UTF-8",
                "user_role": "subscriber",
                "is_test": "1",
                "recheck_reason": "edit",
                "comment_context[0]": "cooking",
                "comment_context[1]": "recipes",
                "POST_comment_post_ID": "42",
                "HTTP_ACCEPT": "text/html",
                "akismet_comment_nonce": "passed",
                "_wpnonce": "abc123",
            }
        ).encode()
    )
    parsed = parse_comment(params)
    comment = parsed.comment
    assert (comment.content, comment.author_name) == ("Nice write-up.", "Dana")
    assert (comment.author_email, comment.author_url) == ("dana@example.org", "https://dana.example")
    assert (comment.user_ip, comment.user_agent) == ("203.0.113.7", "Mozilla/5.0")
    assert comment.referrer == "https://blog.example/post"
    assert (comment.permalink, comment.comment_type, comment.language) == (
        "https://blog.example/post/1", "forum-post", "en_us, fr_fr"
    )
    assert comment.submitted_at == datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
    assert parsed.is_test is True
    assert parsed.user_roles == ("subscriber",)
    assert parsed.extra == {
        "blog": "https://blog.example",
        "blog_lang": "en_us, fr_fr",
        "blog_charset": "UTF-8",
        "user_role": "subscriber",
        "recheck_reason": "edit",
        "comment_date_gmt": "2026-11-28 10:00:00",
        "comment_post_modified_gmt": "2026-11-01T09:00:00Z",
    }
    assert comment.page_context == ("cooking", "recipes")


def test_comment_context_accepts_php_arrays_and_plain_values_in_index_order():
    """comment_context[n] sorts by n; [] and bare values follow in arrival order."""
    body = b"comment_context%5B1%5D=b&comment_context%5B0%5D=a&comment_context%5B%5D=c&comment_context=d"
    params = parse_params(body)
    assert parse_comment(params).comment.page_context == ("a", "b", "c", "d")


def test_missing_user_agent_is_none_and_empty_one_is_empty():
    """None means the site did not say; "" means the browser sent no user agent."""
    assert parse_comment(parse_params(b"comment_content=x")).comment.user_agent is None
    assert parse_comment(parse_params(b"comment_content=x&user_agent=")).comment.user_agent == ""


def test_overlong_values_are_cut_to_the_column_sizes():
    """A 5000-character author name cannot make the store fail."""
    parsed = parse_comment({"comment_author": ["x" * 5000], "user_ip": ["1" * 300]})
    assert len(parsed.comment.author_name) == 500
    assert len(parsed.comment.user_ip) == 64


def test_unreadable_dates_are_kept_raw_but_not_parsed():
    """A date we cannot read leaves submitted_at empty and stays in extra as sent."""
    parsed = parse_comment({"comment_date_gmt": ["yesterday"]})
    assert parsed.comment.submitted_at is None
    assert parsed.extra["comment_date_gmt"] == "yesterday"


@pytest.mark.parametrize(
    ("pairs", "honeypot"),
    [
        ({"honeypot_field_name": "hp", "hidden_honeypot_field": "bot"}, "bot"),
        ({"honeypot_field_name": "hp", "hp": "bot"}, "bot"),
        ({"honeypot_field_name": "ak_hp_textarea", "POST_ak_hp_textarea": "bot"}, "bot"),
        ({"honeypot_field_name": "hp", "hp": ""}, None),
        ({"honeypot_field_name": "comment_content", "comment_content": "hello"}, None),
        ({"POST_ak_hp_textarea": "bot"}, "bot"),
        ({"POST_ak_hp_textarea": ""}, None),
        ({"honeypot_field_name": "hp", "hp": "", "POST_ak_hp_textarea": "bot"}, None),
    ],
)
def test_honeypot_value_comes_from_the_named_field(pairs, honeypot):
    """The honeypot is hidden_honeypot_field, else the field honeypot_field_name names (never a documented
    one), else, when no field is named, the WordPress plugin's ak_hp_textarea."""
    extra = parse_comment({name: [value] for name, value in pairs.items()}).extra
    assert extra.get("honeypot") == honeypot
    assert extra.get("honeypot_field_name") == pairs.get("honeypot_field_name")


@pytest.mark.parametrize(
    ("pairs", "decision"),
    [
        ({"comment_author": "akismet-guaranteed-spam"}, Decision.SPAM),
        ({"comment_author": "viagra-test-123"}, Decision.SPAM),
        ({"comment_author_email": "Akismet-Guaranteed-Spam@example.com"}, Decision.SPAM),
        ({"user_role": "editor,administrator", "is_test": "true"}, Decision.APPROVE),
        ({"user_role": "subscriber", "comment_author": "Dana"}, None),
    ],
)
def test_akismet_test_triggers(pairs, decision):
    """Akismet's documented test values force spam or ham; anything else is left to us."""
    hook = akismet_trigger(parse_comment({name: [value] for name, value in pairs.items()}))
    assert (hook.decision if hook else None) == decision


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("abcdef123456.akismet.example.org", "abcdef123456"),
        ("ABCDEF123456.akismet.example.org:8080", "abcdef123456"),
        ("abcdef123456.localhost:5000", ""),
        ("rest.akismet.com", ""),
        ("moderation.example.org", ""),
        ("127.0.0.1:8000", ""),
        ("[::1]:8000", ""),
        ("", ""),
    ],
)
def test_key_from_host(host, key):
    """Only a 12-character first label of a host with at least three labels is a key."""
    assert key_from_host(host) == key


def test_request_key_prefers_body_then_path_then_host():
    """api_key, then key, then the /k/<key>/ prefix, then the Host subdomain."""
    host = "hosthosthost.example.org"
    assert request_key({"api_key": ["a"], "key": ["b"]}, "pathpathpath", host) == "a"
    assert request_key({"key": ["b"]}, "pathpathpath", host) == "b"
    assert request_key({}, "pathpathpath", host) == "pathpathpath"
    assert request_key({}, None, host) == "hosthosthost"
    assert request_key({"api_key": ["a"], "key": ["b"]}, None, host, names=("key", "api_key")) == "b"


def test_month_bounds_wraps_the_year():
    """December ends on the first of January."""
    assert month_bounds("2026-12") == (datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    with pytest.raises(ValueError, match="YYYY-MM"):
        month_bounds("2026-13")


def test_key_sites_csv_matches_akismets_layout():
    """Title line, column names, one line per site, booleans in lowercase."""
    row = {"site": "blog.example", "api_calls": "3", "spam": "1", "ham": "2", "missed_spam": "0",
           "false_positives": "1", "is_revoked": False}
    assert key_sites_csv("abcdef123456", "2026-11", [row], limit=500, offset=0, total=1).splitlines() == [
        "Active sites for abcdef123456 during 2026-11 (limit:500, offset: 0, total: 1)",
        "Site,Total API Calls,Spam,Ham,Missed Spam,False Positives,Is Revoked",
        "blog.example,3,1,2,0,1,false",
    ]


@pytest.mark.parametrize(
    ("pairs", "missing"),
    [
        ({"blog": "https://blog.example", "user_ip": "203.0.113.7"}, ""),
        ({"user_ip": "203.0.113.7"}, "blog"),
        ({"blog": "https://blog.example", "user_ip": "  "}, "user_ip"),
        ({}, "blog"),
    ],
)
def test_missing_field_names_the_first_required_one_absent(pairs, missing):
    """blog, then user_ip: absent or blank is missing."""
    assert missing_field({name: [value] for name, value in pairs.items()}) == missing


def test_stats_window_six_months_counts_back_across_the_year():
    """6-months starts on the first of the fifth month before this one; anything else is all time."""
    now = datetime(2027, 3, 15, 12, 0, tzinfo=UTC)
    assert stats_window("6-months", now)[0] == datetime(2026, 10, 1, tzinfo=UTC)
    assert stats_window("all", now)[0] == stats_window("since-forever", now)[0] == datetime(1970, 1, 1, tzinfo=UTC)
    assert stats_window("6-months", now)[1] > now
