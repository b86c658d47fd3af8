"""Corpus loaders: the public corpora's traps on tiny hand-made fixtures, site exports, the real files."""

from __future__ import annotations

import csv
import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from moderation.comment import Comment, Label, LabelledComment
from moderation.core.corpora import (
    STARTER_RESOURCE,
    YOUTUBE_VIDEO_URLS,
    counts,
    deduplicate,
    fingerprint,
    load_folder,
    load_shipped,
    load_sms,
    load_starter,
    load_youtube,
    pack_public_corpora,
    shipped_text,
)
from moderation.core.exports import load_export
from moderation.core.records import parse_label
from moderation.errors import DataError

FIXTURES = Path(__file__).parent / "fixtures"


def _example(text: str, label: Label, source: str = "t") -> LabelledComment:
    return LabelledComment(Comment(content=text), label, source)


# --- YouTube ---------------------------------------------------------------------------------------------


def test_youtube_reads_every_row_with_video_groups() -> None:
    """Each CSV row becomes one example grouped by the video name after the first dash."""
    examples = load_youtube(FIXTURES / "youtube")
    assert len(examples) == 6
    assert Counter(e.group for e in examples) == {"Alpha": 4, "Beta-Gamma": 2}
    assert {e.source for e in examples} == {"youtube"}
    assert Counter(e.label for e in examples) == {Label.SPAM: 3, Label.HAM: 3}


def test_youtube_permalink_only_for_the_known_videos() -> None:
    """A file of an unknown video gets no permalink (links in it cannot be "this page")."""
    examples = load_youtube(FIXTURES / "youtube")
    assert {e.comment.permalink for e in examples} == {""}


def test_youtube_strips_bom_and_zero_width_characters() -> None:
    """The trailing U+FEFF that marks most ham and a zero-width space in an author are removed."""
    examples = load_youtube(FIXTURES / "youtube")
    assert examples[0].comment.content == "I still listen to this every morning"
    assert examples[3].comment.author_name == "Sub4Sub"
    assert not any("\ufeff" in e.comment.content or "\u200b" in e.comment.author_name for e in examples)


def test_youtube_keeps_embedded_newlines_quotes_and_html() -> None:
    """RFC-4180 fields keep their newline and doubled quotes; HTML is left for the text normaliser."""
    examples = load_youtube(FIXTURES / "youtube")
    assert examples[2].comment.content == 'first line\nsecond line, with "quotes"'
    assert examples[1].comment.content == 'check out my channel <a href="http://example.test/c">here</a>'
    assert examples[3].comment.content == "subscribe &amp; like<br />pls"


def test_youtube_never_uses_date_or_comment_id() -> None:
    """No field of the produced comments carries the DATE or COMMENT_ID values that leak labels."""
    examples = load_youtube(FIXTURES / "youtube")
    with (FIXTURES / "youtube" / "Youtube01-Alpha.csv").open(encoding="utf-8", newline="") as handle:
        leaky = {v for row in csv.DictReader(handle) for v in (row["DATE"], row["COMMENT_ID"]) if v}
    for example in examples:
        values = [v for v in vars_of(example.comment) if isinstance(v, str)]
        assert not any(token in value for value in values for token in leaky)
        assert example.comment.submitted_at is None and example.comment.rendered_at is None


def vars_of(comment: Comment) -> list[object]:
    return [getattr(comment, name) for name in comment.__slots__]


def test_youtube_empty_folder_is_a_data_error(tmp_path: Path) -> None:
    """A folder without the CSVs fails with a message naming the folder."""
    with pytest.raises(DataError, match=str(tmp_path)):
        load_youtube(tmp_path)


def test_youtube_bad_class_names_file_and_line(tmp_path: Path) -> None:
    """An unknown CLASS value fails with the file and line."""
    (tmp_path / "Youtube09-X.csv").write_text("COMMENT_ID,AUTHOR,DATE,CONTENT,CLASS\na,b,c,hello,2\n")
    with pytest.raises(DataError, match=r"Youtube09-X\.csv:2: expected label"):
        load_youtube(tmp_path)


# --- SMS -------------------------------------------------------------------------------------------------


def test_sms_fixture_reproduces_the_quoting_trap() -> None:
    """A default csv reader merges lines of the fixture, as it does on the real file."""
    with (FIXTURES / "sms" / "SMSSpamCollection").open(encoding="utf-8", newline="") as handle:
        naive = [row for row in csv.reader(handle, delimiter="\t") if row]
    assert len(naive) == 5
    assert len(load_sms(FIXTURES / "sms" / "SMSSpamCollection")) == 6


def test_sms_splits_on_the_first_tab_and_keeps_bare_quotes() -> None:
    """Each line is label, TAB, text; bare double quotes stay in the text."""
    examples = load_sms(FIXTURES / "sms" / "SMSSpamCollection")
    assert [e.label for e in examples] == [Label.HAM, Label.SPAM, Label.HAM, Label.HAM, Label.SPAM, Label.HAM]
    assert examples[1].comment.content == '"WINNER!! Claim your prize now, call 09000000000'
    assert examples[2].comment.content == 'He said "no" and left'
    assert {(e.source, e.group) for e in examples} == {("sms", "sms")}


def test_sms_repairs_cp1252_punctuation_and_keeps_unicode_line_separators() -> None:
    """U+0092 becomes a real apostrophe; U+2028 inside a text does not split the line; CRLF is trimmed."""
    text = load_sms(FIXTURES / "sms" / "SMSSpamCollection")[3].comment.content
    assert text == "I\u2019ll be there &lt;#&gt; mins\u2028late"


def test_sms_accepts_the_folder(tmp_path: Path) -> None:
    """Given the folder, the loader reads SMSSpamCollection inside it."""
    assert len(load_sms(FIXTURES / "sms")) == 6


def test_sms_line_without_tab_names_file_and_line(tmp_path: Path) -> None:
    """A line without a TAB fails with the file and line number."""
    path = tmp_path / "SMSSpamCollection"
    path.write_text("ham\tfine\nspam no tab here\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"SMSSpamCollection:2: expected 'label<TAB>text'"):
        load_sms(path)


def test_sms_missing_file_is_a_data_error(tmp_path: Path) -> None:
    """A missing file fails with a DataError, not an OSError traceback."""
    with pytest.raises(DataError, match="cannot read SMS corpus"):
        load_sms(tmp_path / "nope")


# --- generic site exports --------------------------------------------------------------------------------


def test_generic_csv_maps_fields_and_label_spellings() -> None:
    """CSV rows map to Comment fields; ham/spam, 0 and TRUE all parse; unknown columns are ignored."""
    examples = load_export(FIXTURES / "site-export.csv")
    assert [e.label for e in examples] == [Label.HAM, Label.SPAM, Label.HAM, Label.SPAM]
    first = examples[0].comment
    assert (first.author_name, first.author_email, first.user_ip, first.user_agent) == (
        "Priya",
        "priya@example.org",
        "203.0.113.7",
        "Mozilla/5.0",
    )
    assert examples[1].comment.user_agent is None  # an empty CSV cell cannot mean "browser sent none"
    assert examples[2].comment.content == "Multi-line\ncomment with a newline"
    assert {e.source for e in examples} == {"site-export"}


def test_generic_jsonl_maps_fields_booleans_and_numbers() -> None:
    """JSONL records parse with numeric and boolean labels; "" user agent stays distinct from absent."""
    examples = load_export(FIXTURES / "site-export.jsonl")
    assert [e.label for e in examples] == [Label.HAM, Label.SPAM, Label.HAM, Label.SPAM]
    assert examples[0].comment.user_agent == ""
    assert examples[1].comment.user_agent is None
    assert examples[2].comment.language == "de" and examples[2].group == "post-7"
    assert examples[3].comment.content == "Loans approved today"


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("bad.csv", "content,label\nhello,maybe\n", r"bad\.csv:2: expected label spam/ham"),
        ("bad.csv", "content,label\nhello,ham\n,spam\n", r"bad\.csv:3: expected a non-empty 'content'"),
        ("bad.csv", "content,label\nhello,ham,extra\n", r"bad\.csv:2: expected 2 columns"),
        ("bad.csv", "text,label\nhello,ham\n", r"bad\.csv: expected a header with columns content, label"),
        ("bad.jsonl", '{"content": "a", "label": "ham"}\n{"content": "b"\n', r"bad\.jsonl:2: expected one JSON"),
        ("bad.jsonl", '["content", "label"]\n', r"bad\.jsonl:1: expected a JSON object, found list"),
        ("bad.jsonl", '{"content": "a"}\n', r"bad\.jsonl:1: expected a 'label'"),
        ("bad.jsonl", '{"content": 5, "label": "ham"}\n', r"bad\.jsonl:1: expected a non-empty 'content'"),
        ("bad.txt", "whatever", r"bad\.txt: cannot tell the format"),
        ("bad.csv", 'content,label\n"ok",ham\n"a"b,spam\n', r"bad\.csv:3: malformed CSV"),
        ("bad.csv", 'content,label\nok,ham\n"' + "x" * 200_000 + '",spam\n', r"bad\.csv:3: malformed CSV"),
    ],
)
def test_generic_bad_rows_name_file_and_line(tmp_path: Path, name: str, text: str, message: str) -> None:
    """Each kind of malformed row fails with a DataError naming the file and line."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataError, match=message):
        load_export(path)


def test_generic_undecodable_or_missing_file_is_a_data_error(tmp_path: Path) -> None:
    """Latin-1 bytes in a UTF-8 export, or a missing file, fail with a DataError naming the file."""
    path = tmp_path / "latin.csv"
    path.write_bytes("content,label\nok,ham\ncaf\xe9,spam\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin\.csv: expected UTF-8 text"):
        load_export(path)
    with pytest.raises(DataError, match=r"cannot read .*missing\.jsonl"):
        load_export(tmp_path / "missing.jsonl")


def test_parse_label_accepts_documented_spellings() -> None:
    """spam/ham, 1/0 and true/false in any case (and JSON booleans/numbers) map to labels."""
    for raw in ("spam", "SPAM", "1", 1, "true", True, " Spam "):
        assert parse_label(raw, "x") is Label.SPAM
    for raw in ("ham", "0", 0, "False", False):
        assert parse_label(raw, "x") is Label.HAM


# --- WordPress WXR ---------------------------------------------------------------------------------------


def test_wxr_maps_approved_spam_and_skips_pending_and_trash() -> None:
    """Approved comments are ham, spam-marked are spam; pending (0) and trash are left out."""
    examples = load_export(FIXTURES / "wordpress.xml")
    assert [(e.comment.author_name, e.label) for e in examples] == [
        ("Ada", Label.HAM),
        ("buy cheap pills online", Label.SPAM),
        ("Bram", Label.HAM),
        ("WIN BIG casino", Label.SPAM),
    ]
    ada = examples[0].comment
    assert (ada.author_email, ada.author_url, ada.user_ip, ada.comment_type) == (
        "ada@example.org",
        "https://ada.example.org",
        "203.0.113.5",
        "comment",
    )
    assert ada.content.startswith('Nice post. See <a href="https://en.wikipedia.org/wiki/Spam">')
    assert [e.group for e in examples] == ["wordpress:hello-world"] * 2 + ["wordpress:second-post"] * 2
    assert {e.source for e in examples} == {"wordpress"}


def test_wxr_refuses_entity_expansion() -> None:
    """An export with a DTD declaring entities (an XML bomb) is refused, not expanded."""
    with pytest.raises(DataError, match=r"xml-bomb\.xml:\d+: refused unsafe XML"):
        load_export(FIXTURES / "xml-bomb.xml")


def test_wxr_malformed_xml_is_a_data_error(tmp_path: Path) -> None:
    """Truncated XML fails with a DataError naming the file."""
    path = tmp_path / "broken.xml"
    path.write_text("<rss><channel><item>", encoding="utf-8")
    with pytest.raises(DataError, match=r"broken\.xml"):
        load_export(path)


def test_data_folder_reads_site_exports_as_sites_import_does(tmp_path: Path) -> None:
    """A data folder's WordPress and Disqus exports go through the reader `sites import` uses: one parser per
    format, groups by post or thread, an unknown comment status named by file and line."""
    for name in ("wordpress.xml", "disqus.xml"):
        shutil.copy(FIXTURES / name, tmp_path / name)
    examples = load_folder(tmp_path)
    assert {e.source for e in examples} == {"wordpress", "disqus"}
    assert {e.group for e in examples if e.source == "disqus"} == {"disqus:100"}
    assert {e.group for e in examples if e.source == "wordpress"} == {"wordpress:hello-world", "wordpress:second-post"}
    odd = (FIXTURES / "wordpress.xml").read_text(encoding="utf-8").replace(
        "<wp:comment_approved><![CDATA[spam]]>", "<wp:comment_approved><![CDATA[held]]>", 1
    )
    assert "held" in odd
    (tmp_path / "wordpress.xml").write_text(odd, encoding="utf-8")
    with pytest.raises(DataError, match=r"wordpress\.xml:\d+: expected wp:comment_approved"):
        load_folder(tmp_path)


# --- the starter corpus ---------------------------------------------------------------------------------


def _starter_records() -> list[dict]:
    return [json.loads(line) for line in shipped_text(STARTER_RESOURCE).splitlines() if line.strip()]


def test_starter_corpus_size_and_spam_share() -> None:
    """The written corpus holds thousands of comments, a bit over half spam, none duplicated."""
    examples = load_starter()
    assert len(examples) >= 3000
    spam_share = sum(e.label is Label.SPAM for e in examples) / len(examples)
    assert 0.45 <= spam_share <= 0.65
    assert len(deduplicate(examples)) == len(examples)
    assert {e.source for e in examples} == {"starter"}


def test_starter_corpus_covers_languages_families_and_kinds_of_site() -> None:
    """Every spam family the issue lists, risky-looking ham, many languages and every kind of site appear."""
    records = _starter_records()
    languages = Counter(r["lang"] for r in records)
    assert languages.most_common(1)[0][0] == "en" and len(languages) >= 15
    assert all(languages[lang] >= 50 for lang in ("de", "fr", "es", "pt", "it", "ru"))
    spam_families = {r["family"] for r in records if r["label"] == "spam"}
    assert {
        "praise_link", "seo_anchor", "support_phone", "investment_scam", "recovery_scam", "work_from_home", "loan",
        "essay", "pharma", "casino", "adult", "giveaway", "promotion", "filler", "link_only", "contact_only",
    } <= spam_families  # fmt: skip
    ham_families = {r["family"] for r in records if r["label"] == "ham"}
    assert {"source_link", "product", "code", "short_reply", "emoji_short", "video_talk", "political"} <= ham_families
    assert not spam_families & ham_families
    kinds = {r["site"] for r in records if r["site"]}
    assert kinds == {"news", "blog", "shop", "forum", "video"}
    for kind in kinds:
        assert {r["label"] for r in records if r["site"] == kind} == {"spam", "ham"}


def test_starter_examples_are_grouped_by_kind_of_site() -> None:
    """A written comment's split group is the kind of site it was posted on (its family for the oldest rows)."""
    examples, records = load_starter(), _starter_records()
    assert [e.group for e in examples] == [r["site"] or r["family"] for r in records]


def test_a_shipped_corpus_that_does_not_match_its_checksum_is_refused(tmp_path, monkeypatch) -> None:
    """A shipped file altered after packing is a DataError, never training material."""
    from moderation.core import corpora

    data = tmp_path / "data"
    shutil.copytree(Path(corpora.__file__).parent / "data", data)
    with (data / STARTER_RESOURCE).open("a", encoding="utf-8") as handle:
        handle.write('{"content": "planted", "label": "ham"}\n')
    monkeypatch.setattr(corpora.resources, "files", lambda _package: tmp_path)
    with pytest.raises(DataError, match=r"starter\.jsonl: expected SHA-256"):
        load_starter()


def test_pack_writes_what_the_loaders_read(tmp_path) -> None:
    """`pack_public_corpora` on the fixture corpora writes copies whose rows equal the raw loaders' rows."""
    shutil.copytree(FIXTURES / "youtube", tmp_path / "raw" / "youtube-spam-collection")
    shutil.copytree(FIXTURES / "sms", tmp_path / "raw" / "sms-spam-collection")
    dest = tmp_path / "data"
    dest.mkdir()
    shutil.copy(Path(__file__).resolve().parent.parent / "moderation/core/data" / STARTER_RESOURCE, dest)
    pack_public_corpora(tmp_path / "raw", dest)
    youtube = [json.loads(line) for line in (dest / "youtube.jsonl").read_text().splitlines()]
    raw = load_folder(tmp_path / "raw")
    assert [(r["content"], r["label"], r["group"]) for r in youtube] == [
        (e.comment.content, e.label.value, e.group) for e in raw if e.source == "youtube"
    ]
    sums = (dest / "SHA256SUMS").read_text().split()
    assert sums[1::2] == ["starter.jsonl", "youtube.jsonl", "sms.jsonl"]


@pytest.mark.corpora
def test_the_shipped_public_corpora_equal_the_raw_files(corpora_dir) -> None:
    """The copies the package ships hold the same comments, labels and groups as the published files."""
    shipped = [e for e in load_shipped() if e.source != "starter"]
    raw = load_folder(corpora_dir)
    assert [(e.comment, e.label, e.source, e.group) for e in shipped] == [
        (e.comment, e.label, e.source, e.group) for e in raw if e.source in ("youtube", "sms")
    ]


def test_starter_corpus_rows_are_complete() -> None:
    """Every row has content and the author fields; ham with legitimate links exists to keep links from meaning spam."""
    examples = load_starter()
    assert all(e.comment.content and e.comment.author_name for e in examples)
    assert sum("http" in e.comment.content for e in examples if e.label is Label.HAM) >= 20


# --- folders, dedup, bookkeeping -------------------------------------------------------------------------


def test_load_folder_finds_every_kind_of_corpus(tmp_path: Path) -> None:
    """A data folder with both public-corpus layouts and three site exports loads all of them."""
    shutil.copytree(FIXTURES / "youtube", tmp_path / "youtube-spam-collection")
    shutil.copytree(FIXTURES / "sms", tmp_path / "sms-spam-collection")
    for name in ("site-export.csv", "site-export.jsonl", "wordpress.xml"):
        shutil.copy(FIXTURES / name, tmp_path / name)
    examples = load_folder(tmp_path)
    assert Counter(e.source for e in examples) == {"youtube": 6, "sms": 6, "site-export": 8, "wordpress": 4}


def test_load_folder_without_corpora_is_a_data_error(tmp_path: Path) -> None:
    """An empty or missing folder fails with one clear message."""
    with pytest.raises(DataError, match="found none"):
        load_folder(tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        load_folder(tmp_path / "missing")


def test_deduplicate_normalises_case_and_whitespace_and_keeps_first() -> None:
    """Copies differing in case, spacing or a BOM collapse to the first one seen."""
    examples = [
        _example("Hello  World", Label.HAM, "a"),
        _example("hello world\ufeff", Label.HAM, "b"),
        _example("Other", Label.SPAM),
    ]
    assert [e.source for e in deduplicate(examples)] == ["a", "t"]


def test_deduplicate_conflicts_majority_wins_and_ties_drop() -> None:
    """Conflicting copies keep the majority label; an even split drops the text entirely."""
    examples = [
        _example("buy now", Label.HAM, "first"),
        _example("Buy now", Label.SPAM, "second"),
        _example("BUY NOW", Label.SPAM, "third"),
        _example("tie", Label.SPAM),
        _example("Tie", Label.HAM),
    ]
    kept = deduplicate(examples)
    assert [(e.comment.content, e.label, e.source) for e in kept] == [("Buy now", Label.SPAM, "second")]


def test_fingerprint_ignores_order_and_sees_labels() -> None:
    """The fingerprint is order-independent and changes when a label flips."""
    a, b = _example("one", Label.HAM), _example("two", Label.SPAM)
    assert fingerprint([a, b]) == fingerprint([b, a])
    assert fingerprint([a, b]) != fingerprint([a, _example("two", Label.HAM)])
    assert len(fingerprint([])) == 64


def test_counts_tallies_by_source() -> None:
    """counts() gives totals and a per-source spam/ham split."""
    result = counts([_example("a", Label.SPAM, "x"), _example("b", Label.HAM, "x"), _example("c", Label.HAM, "y")])
    assert result == {
        "total": 3,
        "spam": 1,
        "ham": 2,
        "by_source": {"x": {"spam": 1, "ham": 1}, "y": {"spam": 0, "ham": 1}},
    }


# --- the real corpora ------------------------------------------------------------------------------------


@pytest.mark.corpora
def test_real_youtube_counts(corpora_dir: Path) -> None:
    """The YouTube collection loads 1,956 rows: 1,005 spam and 951 ham over five videos, no BOM left."""
    examples = load_youtube(corpora_dir / "youtube-spam-collection")
    assert len(examples) == 1956
    assert Counter(e.label for e in examples) == {Label.SPAM: 1005, Label.HAM: 951}
    assert Counter(e.group for e in examples) == {
        "Psy": 350,
        "KatyPerry": 350,
        "LMFAO": 438,
        "Eminem": 448,
        "Shakira": 370,
    }
    assert not any("\ufeff" in e.comment.content for e in examples)


@pytest.mark.corpora
def test_real_youtube_comments_know_their_video(corpora_dir: Path) -> None:
    """Every comment carries its video's URL, so ham linking to its own video (a time in it) is recognised."""
    from moderation.core.features import extract_signals

    examples = load_youtube(corpora_dir / "youtube-spam-collection")
    assert {e.group: e.comment.permalink for e in examples} == YOUTUBE_VIDEO_URLS
    here = [e for e in examples if extract_signals(e.comment)["url_this_page"] > 0]
    assert {e.group for e in here} >= {"Psy", "KatyPerry", "LMFAO"}
    assert sum(e.label is Label.HAM for e in here) >= 10


@pytest.mark.corpora
def test_real_sms_counts(corpora_dir: Path) -> None:
    """The SMS collection loads all 5,574 lines (4,827 ham, 747 spam) despite its bare quotes."""
    examples = load_sms(corpora_dir / "sms-spam-collection" / "SMSSpamCollection")
    assert len(examples) == 5574
    assert Counter(e.label for e in examples) == {Label.HAM: 4827, Label.SPAM: 747}


@pytest.mark.corpora
def test_real_corpora_dedup(corpora_dir: Path) -> None:
    """Dedup removes at least the exact duplicate texts (196 YouTube, 403 SMS) and leaves no repeated key."""
    youtube = load_youtube(corpora_dir / "youtube-spam-collection")
    sms = load_sms(corpora_dir / "sms-spam-collection" / "SMSSpamCollection")
    # 196 exact duplicates as published; once the U+FEFF marks are stripped, 17 more texts coincide.
    assert len({e.comment.content for e in youtube}) == 1956 - 196 - 17
    # 403 exact duplicates as published; trimming surrounding spaces makes 12 more texts coincide.
    assert len({e.comment.content for e in sms}) == 5574 - 403 - 12
    deduped_youtube, deduped_sms = deduplicate(youtube), deduplicate(sms)
    # Normalisation (case, spacing, HTML, confusables) merges a few more than exact matching does.
    assert 1650 <= len(deduped_youtube) <= 1956 - 196 - 17
    assert 5000 <= len(deduped_sms) <= 5574 - 403 - 12
    both = load_folder(corpora_dir)
    assert len(both) == 1956 + 5574
    assert counts(deduplicate(both))["total"] <= len(deduped_youtube) + len(deduped_sms)
