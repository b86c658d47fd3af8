"""Loaders that turn labelled corpora into `LabelledComment`s, plus deduplication and a fingerprint.

Sources and their traps (see ../shared/datasets/README.md):

- YouTube Spam Collection: five RFC-4180 CSVs. Only AUTHOR and CONTENT are read: DATE and COMMENT_ID
  leak the label (Eminem spam rows have no DATE; ID prefixes track the class), and so does a trailing
  U+FEFF on most ham, so BOM and zero-width characters are stripped.
- SMS Spam Collection: `label<TAB>text` lines whose texts hold bare double quotes; a default csv reader
  swallows lines into quoted fields (5,572 rows instead of 5,574), so each line is split on its first TAB.
- Site exports: a generic CSV/JSONL format and WordPress WXR, so a site can bootstrap from its history.
- What the package ships in `moderation/core/data/` (see its README): the starter corpus written for this
  project and normalised copies of the two public corpora, each checked against `SHA256SUMS` on load.

`source` is the corpus name ("youtube", "sms", "starter", or a site export's file stem); `group` is the
unit an honest split keeps together (a YouTube video, a WordPress post).
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any

from moderation.comment import Comment, Label, LabelledComment
from moderation.core.text import normalize
from moderation.errors import DataError

YOUTUBE_DIR = "youtube-spam-collection"
SMS_DIR = "sms-spam-collection"
SMS_FILE = "SMSSpamCollection"
STARTER_RESOURCE = "starter.jsonl"
YOUTUBE_RESOURCE = "youtube.jsonl"
SMS_RESOURCE = "sms.jsonl"
CHECKSUMS_RESOURCE = "SHA256SUMS"
# The page each YouTube file's comments were posted on (the videos of the TubeSpam paper), so a
# comment's links can be compared with it: ham there links to its own video ("best part
# youtube.com/watch?v=KQ6zr6kCPj8&t=2m19s", "Katy Perry - Roar: youtu.be/CevxZvSJLk8").
YOUTUBE_VIDEO_URLS = {
    "Psy": "https://www.youtube.com/watch?v=9bZkp7q19f0",
    "KatyPerry": "https://www.youtube.com/watch?v=CevxZvSJLk8",
    "LMFAO": "https://www.youtube.com/watch?v=KQ6zr6kCPj8",
    "Eminem": "https://www.youtube.com/watch?v=uelHwf8o7_U",
    "Shakira": "https://www.youtube.com/watch?v=pRpeEdMmmQ0",
}
# What each of those pages is about, as a site would send it with a comment (`Comment.page_context`): the
# video's title. It lets the model learn what a comment that has nothing to do with its page is worth.
YOUTUBE_VIDEO_TITLES = {
    "Psy": "PSY - GANGNAM STYLE (강남스타일) M/V",
    "KatyPerry": "Katy Perry - Roar",
    "LMFAO": "LMFAO ft. Lauren Bennett, GoonRock - Party Rock Anthem",
    "Eminem": "Eminem - Love The Way You Lie ft. Rihanna",
    "Shakira": "Shakira - Waka Waka (This Time for Africa) (The Official 2010 FIFA World Cup Song)",
}

# BOM and zero-width characters: invisible, so they carry no meaning for a reader, but in the YouTube
# set a trailing U+FEFF marks most ham and a model would learn it.
_INVISIBLE = dict.fromkeys(map(ord, "\ufeff\u200b\u200c\u200d\u2060\u180e\u00ad"), None)

# The SMS texts hold Windows-1252 punctuation decoded as C1 control characters (U+0091-U+0096).
_CP1252_C1 = str.maketrans(
    {
        "\u0091": "\u2018",
        "\u0092": "\u2019",
        "\u0093": "\u201c",
        "\u0094": "\u201d",
        "\u0095": "\u2022",
        "\u0096": "\u2013",
        "\u0097": "\u2014",
    }
)

_LABEL_WORDS = {
    "spam": Label.SPAM,
    "1": Label.SPAM,
    "true": Label.SPAM,
    "ham": Label.HAM,
    "0": Label.HAM,
    "false": Label.HAM,
}

# Required fields of the generic site-export format (CSV header or JSONL keys).
GENERIC_REQUIRED = ("content", "label")


def clean_text(text: str) -> str:
    """Remove BOM and zero-width characters and surrounding whitespace; keep everything else as written."""
    return text.translate(_INVISIBLE).strip()


def parse_label(raw: object, where: str) -> Label:
    """Map spam/ham, 1/0, true/false (any case) to a `Label`, or raise DataError naming `where`."""
    if isinstance(raw, bool):
        return Label.SPAM if raw else Label.HAM
    key = "" if raw is None else str(raw).strip().lower()
    try:
        return _LABEL_WORDS[key]
    except KeyError:
        raise DataError(f"{where}: expected label spam/ham, 1/0 or true/false, found {raw!r}") from None


# --- public corpora ------------------------------------------------------------------------------------


def _csv_records(path: Path, required: Sequence[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Rows of a CSV file with a header, as ("file:line", row); DataError for anything malformed."""
    line = 0
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle, strict=True)  # bad quoting must fail, not merge rows
            missing = [name for name in required if name not in (reader.fieldnames or ())]
            if missing:
                raise DataError(f"{path}: expected a header with columns {', '.join(required)}; missing {missing}")
            for row in reader:
                line = reader.line_num
                if None in row:  # more cells than header columns
                    width = len(reader.fieldnames or ())
                    raise DataError(f"{path}:{line}: expected {width} columns, found more")
                yield f"{path}:{line}", row
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: expected UTF-8 text, found undecodable bytes after line {line}") from exc
    except csv.Error as exc:
        raise DataError(f"{path}:{line + 1}: malformed CSV ({exc})") from exc
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from exc


def load_youtube(folder: Path) -> list[LabelledComment]:
    """Read the YouTube Spam Collection CSVs in `folder` (group = video name such as "Psy").

    Raises DataError when the folder holds no `Youtube*.csv` file or a file lacks the expected columns.
    """
    folder = Path(folder)
    files = sorted(folder.glob("Youtube*.csv"))
    if not files:
        raise DataError(f"{folder}: expected the YouTube Spam Collection CSVs (Youtube01-Psy.csv ...), found none")
    examples: list[LabelledComment] = []
    for path in files:
        # "Youtube01-Psy.csv" -> "Psy": one group per video, the unit of a leave-one-video-out split.
        video = path.stem.split("-", 1)[1] if "-" in path.stem else path.stem
        permalink = YOUTUBE_VIDEO_URLS.get(video, "")
        for where, row in _csv_records(path, ("AUTHOR", "CONTENT", "CLASS")):
            label = parse_label(row["CLASS"], where)
            comment = Comment(
                content=clean_text(row["CONTENT"] or ""),
                author_name=clean_text(row["AUTHOR"] or ""),
                permalink=permalink,
                page_context=_video_context(video),
            )
            examples.append(LabelledComment(comment, label, "youtube", video))
    return examples


def _video_context(video: str) -> tuple[str, ...]:
    """The page context of a YouTube video of the collection: its title, or none for another name."""
    title = YOUTUBE_VIDEO_TITLES.get(video)
    return (title,) if title else ()


def load_sms(path: Path) -> list[LabelledComment]:
    """Read the SMS Spam Collection file (`label<TAB>text` per line), splitting each line on its first TAB.

    Raises DataError naming the file and line of a line without a TAB or with an unknown label.
    """
    path = Path(path)
    if path.is_dir():
        path = path / SMS_FILE
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read SMS corpus {path}: {exc.strerror or exc}") from exc
    text = raw.decode("utf-8-sig", errors="replace")
    examples: list[LabelledComment] = []
    # split("\n"), not splitlines(): the texts hold characters splitlines() treats as line breaks.
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        label_text, tab, body = line.partition("\t")
        if not tab:
            raise DataError(f"{path}:{number}: expected 'label<TAB>text', found no TAB")
        label = parse_label(label_text, f"{path}:{number}")
        content = clean_text(body.translate(_CP1252_C1))
        examples.append(LabelledComment(Comment(content=content), label, "sms", "sms"))
    return examples


# --- site exports ---------------------------------------------------------------------------------------


def _optional(value: object) -> str:
    return "" if value is None else clean_text(str(value))


def _row_to_example(row: Mapping[str, Any], where: str, source: str, *, csv_row: bool) -> LabelledComment:
    """Build one example from a generic-format record, or raise DataError naming `where`."""
    content = row.get("content")
    if not isinstance(content, str) or not content.strip():
        raise DataError(f"{where}: expected a non-empty 'content' text, found {content!r}")
    if "label" not in row or row["label"] in (None, ""):
        raise DataError(f"{where}: expected a 'label' (spam/ham, 1/0, true/false), found none")
    label = parse_label(row["label"], where)
    # None means "the site did not record a user agent". A CSV cannot tell an empty cell from an absent
    # value, so an empty cell is None too; JSONL can say "" (the browser sent none) explicitly.
    agent = row.get("user_agent")
    user_agent = None if agent is None or (csv_row and agent == "") else clean_text(str(agent))
    comment = Comment(
        content=clean_text(content),
        author_name=_optional(row.get("author_name")),
        author_email=_optional(row.get("author_email")),
        author_url=_optional(row.get("author_url")),
        user_ip=_optional(row.get("user_ip")),
        user_agent=user_agent,
        language=_optional(row.get("lang") or row.get("language")),
        page_context=page_context(row.get("page_title"), row.get("page_tags")),
    )
    group = _optional(row.get("group")) or source
    return LabelledComment(comment, label, source, group)


def page_context(title: object, tags: object) -> tuple[str, ...]:
    """A page's title and tags as `Comment.page_context`: tags as a list or one comma-separated text; empty
    values and anything but text left out."""
    if isinstance(tags, str):
        tags = tags.split(",")
    values = [title, *(tags if isinstance(tags, list | tuple) else [])]
    return tuple(text for text in (clean_text(value).strip() for value in values if isinstance(value, str)) if text)


def parse_json_line(line: str, where: str) -> dict[str, Any]:
    """One line of JSON-lines input (a corpus, `check --jsonl`) as an object; DataError naming `where` if not one."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataError(f"{where}: expected one JSON object per line, found invalid JSON ({exc.msg})") from exc
    if not isinstance(record, dict):
        raise DataError(f"{where}: expected a JSON object, found {type(record).__name__}")
    return record


def _jsonl_rows(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """Objects of a JSON-lines file, as ("file:line", object); DataError for anything malformed."""
    number = 0
    try:
        with path.open(encoding="utf-8-sig") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                where = f"{path}:{number}"
                yield where, parse_json_line(line, where)
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: expected UTF-8 text, found undecodable bytes after line {number}") from exc
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from exc


def load_generic(path: Path) -> list[LabelledComment]:
    """Read a site export in the generic CSV (with header) or JSONL format; source = the file's stem.

    Fields: content, label (spam/ham, 1/0, true/false), and optionally author_name, author_email,
    author_url, user_ip, user_agent, lang, group, page_title, page_tags (what the page is about; tags
    comma-separated in a CSV). Unknown fields are ignored. Raises DataError naming the
    file and line of the first bad row.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".jsonl"):
        raise DataError(f"{path}: expected a .csv or .jsonl file, found {path.suffix or 'no extension'!r}")
    rows = _csv_records(path, GENERIC_REQUIRED) if suffix == ".csv" else _jsonl_rows(path)
    return [_row_to_example(row, where, path.stem, csv_row=suffix == ".csv") for where, row in rows]


_WXR_NS = re.compile(r"^\{http://wordpress\.org/export/[0-9.]+/\}")
# comment_approved values: "1" published (ham), "spam" marked spam; "0" (pending), "trash" and
# "post-trashed" say nothing about spamminess, so those comments are skipped.
_WXR_LABELS = {"1": Label.HAM, "spam": Label.SPAM}


def _wp_children(element: Any) -> dict[str, str]:
    """The `wp:` children of an element as {local name: text}, whatever the WXR version."""
    values: dict[str, str] = {}
    for child in element:
        tag = child.tag if isinstance(child.tag, str) else ""
        if _WXR_NS.match(tag):
            values[_WXR_NS.sub("", tag)] = child.text or ""
    return values


def load_wxr(path: Path) -> list[LabelledComment]:
    """Read comments from a WordPress WXR export (approved → ham, spam → spam, pending/trash skipped).

    Parsed with defusedxml: an export is attacker-written text (its comments), so DTDs, entity
    expansion ("billion laughs") and external entities are refused. group = the post's slug or id.
    Raises DataError for unreadable or malformed XML.
    """
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import ParseError
    from defusedxml.ElementTree import parse as safe_parse

    path = Path(path)
    try:
        tree = safe_parse(str(path), forbid_dtd=True)
    except (ParseError, DefusedXmlException) as exc:
        raise DataError(f"{path}: expected a WordPress WXR export, found unsafe or malformed XML ({exc})") from exc
    except OSError as exc:
        raise DataError(f"cannot read WXR export {path}: {exc.strerror or exc}") from exc
    examples: list[LabelledComment] = []
    for item in tree.getroot().iter("item"):
        post = _wp_children(item)
        group = post.get("post_name") or post.get("post_id") or (item.findtext("title") or "")
        for element in item:
            if not (isinstance(element.tag, str) and _WXR_NS.match(element.tag)):
                continue
            if _WXR_NS.sub("", element.tag) != "comment":
                continue
            fields = _wp_children(element)
            label = _WXR_LABELS.get(fields.get("comment_approved", "").strip())
            content = clean_text(fields.get("comment_content", ""))
            if label is None or not content:
                continue
            comment = Comment(
                content=content,
                author_name=clean_text(fields.get("comment_author", "")),
                author_email=clean_text(fields.get("comment_author_email", "")),
                author_url=clean_text(fields.get("comment_author_url", "")),
                user_ip=clean_text(fields.get("comment_author_IP", "")),
                comment_type=clean_text(fields.get("comment_type", "")),
            )
            examples.append(LabelledComment(comment, label, path.stem, f"{path.stem}:{group}"))
    return examples


def shipped_text(name: str) -> str:
    """A corpus file shipped in the package, after checking its SHA-256 against `SHA256SUMS` beside it.

    Raises DataError when the file is missing, unlisted or altered: a model is never trained on data
    other than what the package says it ships.
    """
    folder = resources.files("moderation.core") / "data"
    try:
        listed = (folder / CHECKSUMS_RESOURCE).read_text("utf-8").splitlines()
        payload = (folder / name).read_bytes()
    except (OSError, ValueError) as exc:
        raise DataError(f"shipped corpus {name}: cannot read it or its checksum ({exc})") from exc
    sums = {file: expected for expected, _, file in (line.partition("  ") for line in listed)}
    digest = hashlib.sha256(payload).hexdigest()
    if sums.get(name) != digest:
        raise DataError(
            f"shipped corpus {name}: expected SHA-256 {sums.get(name)}, found {digest}; reinstall the package"
        )
    return payload.decode("utf-8")


def _shipped(name: str, source: str, group_field: str) -> list[LabelledComment]:
    examples = []
    for number, line in enumerate(shipped_text(name).split("\n"), start=1):
        if not line.strip():
            continue
        where = f"{name}:{number}"
        record = parse_json_line(line, where)
        example = _row_to_example(record, where, source, csv_row=False)
        group = str(record.get(group_field) or record.get("family") or source)
        comment = replace(example.comment, permalink=str(record.get("permalink") or ""))
        if source == "youtube":
            comment = replace(comment, page_context=_video_context(group))
        examples.append(LabelledComment(comment, example.label, source, group))
    return examples


def load_starter() -> list[LabelledComment]:
    """The corpus written for this project (source "starter"; group: the kind of site it was posted on)."""
    return _shipped(STARTER_RESOURCE, "starter", "site")


def load_shipped() -> list[LabelledComment]:
    """Every corpus the package ships: the starter corpus and normalised copies of the two public corpora."""
    return load_starter() + _shipped(YOUTUBE_RESOURCE, "youtube", "group") + _shipped(SMS_RESOURCE, "sms", "group")


def pack_public_corpora(data_dir: Path, dest: Path) -> list[Path]:
    """Write the normalised copies of the public corpora in `data_dir` that the package ships, into `dest`,
    and rewrite `dest`'s `SHA256SUMS` for every shipped file. Returns the files written.

    One JSON object per comment: content and author as the loaders read them (BOM and zero-width
    characters stripped, SMS punctuation repaired), label, group (video or "sms"), the video's URL.
    """
    data_dir, dest = Path(data_dir), Path(dest)
    written = []
    for name, examples in (
        (YOUTUBE_RESOURCE, load_youtube(data_dir / YOUTUBE_DIR)),
        (SMS_RESOURCE, load_sms(data_dir / SMS_DIR / SMS_FILE)),
    ):
        lines = []
        for e in examples:
            record = {"content": e.comment.content, "author_name": e.comment.author_name, "label": e.label.value}
            record["group"] = e.group
            if e.comment.permalink:
                record["permalink"] = e.comment.permalink
            lines.append(json.dumps(record, ensure_ascii=False))
        (dest / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
        written.append(dest / name)
    shipped = (STARTER_RESOURCE, YOUTUBE_RESOURCE, SMS_RESOURCE)
    sums = [f"{hashlib.sha256((dest / name).read_bytes()).hexdigest()}  {name}" for name in shipped]
    (dest / CHECKSUMS_RESOURCE).write_text("\n".join(sums) + "\n", encoding="utf-8")
    return [*written, dest / CHECKSUMS_RESOURCE]


def load_folder(data_dir: Path) -> list[LabelledComment]:
    """Load every corpus in `data_dir`: youtube-spam-collection/, sms-spam-collection/, *.csv, *.jsonl, *.xml.

    Raises DataError when the folder does not exist or holds none of these.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataError(f"data folder {data_dir} does not exist")
    examples: list[LabelledComment] = []
    found = False
    if (data_dir / YOUTUBE_DIR).is_dir():
        examples += load_youtube(data_dir / YOUTUBE_DIR)
        found = True
    if (data_dir / SMS_DIR / SMS_FILE).is_file():
        examples += load_sms(data_dir / SMS_DIR / SMS_FILE)
        found = True
    for path in sorted(data_dir.iterdir()):
        if not path.is_file():
            continue
        suffix = path.suffix.lower()
        if suffix in (".csv", ".jsonl"):
            examples += load_generic(path)
            found = True
        elif suffix == ".xml":
            examples += load_wxr(path)
            found = True
    if not found:
        raise DataError(
            f"{data_dir}: expected {YOUTUBE_DIR}/, {SMS_DIR}/ or site exports (*.csv, *.jsonl, *.xml), found none"
        )
    return examples


# --- deduplication and bookkeeping ---------------------------------------------------------------------


def dedup_key(text: str) -> str:
    """The text two comments must share to count as duplicates: `text.normalize`d, casefolded, spaces collapsed.

    The same normalisation the features see, so copies that differ only by case, spacing, HTML, invisible
    characters or look-alike letters count as one text (they would otherwise straddle a train/test split).
    """
    return " ".join(normalize(text).casefold().split())


def deduplicate(examples: Iterable[LabelledComment]) -> list[LabelledComment]:
    """Keep one example per normalised content, in first-seen order.

    When copies disagree, the majority label wins (the first example carrying it is kept); a tie drops
    every copy, since we cannot tell which label is right.
    """
    buckets: dict[str, list[LabelledComment]] = {}
    for example in examples:
        buckets.setdefault(dedup_key(example.comment.content), []).append(example)
    kept: list[LabelledComment] = []
    for copies in buckets.values():
        votes = Counter(copy.label for copy in copies).most_common()
        if len(votes) > 1 and votes[0][1] == votes[1][1]:
            continue
        winner = votes[0][0]
        kept.append(next(copy for copy in copies if copy.label == winner))
    return kept


def fingerprint(examples: Sequence[LabelledComment]) -> str:
    """SHA-256 over the sorted (content, label) pairs: the same data in any order gives the same value."""
    digest = hashlib.sha256()
    for line in sorted(json.dumps([e.comment.content, str(e.label)], ensure_ascii=False) for e in examples):
        digest.update(line.encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


def counts(examples: Sequence[LabelledComment]) -> dict[str, Any]:
    """Totals for a training manifest: {"total", "spam", "ham", "by_source": {source: {"spam", "ham"}}}."""
    by_source: dict[str, dict[str, int]] = {}
    for example in examples:
        tally = by_source.setdefault(example.source, {"spam": 0, "ham": 0})
        tally[str(example.label)] += 1
    spam = sum(t["spam"] for t in by_source.values())
    ham = sum(t["ham"] for t in by_source.values())
    return {"total": spam + ham, "spam": spam, "ham": ham, "by_source": dict(sorted(by_source.items()))}


__all__ = [
    "clean_text",
    "counts",
    "dedup_key",
    "deduplicate",
    "fingerprint",
    "load_folder",
    "load_generic",
    "load_sms",
    "load_starter",
    "load_wxr",
    "load_youtube",
    "parse_label",
]
