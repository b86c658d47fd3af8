"""Loaders that turn labelled corpora into `LabelledComment`s, plus deduplication and a fingerprint.

Sources and their traps (see ../shared/datasets/README.md):

- YouTube Spam Collection: five RFC-4180 CSVs. Only AUTHOR and CONTENT are read: DATE and COMMENT_ID
  leak the label (Eminem spam rows have no DATE; ID prefixes track the class), and so does a trailing
  U+FEFF on most ham, so BOM and zero-width characters are stripped.
- SMS Spam Collection: `label<TAB>text` lines whose texts hold bare double quotes; a default csv reader
  swallows lines into quoted fields (5,572 rows instead of 5,574), so each line is split on its first TAB.
- Site exports in a data folder (generic CSV/JSONL, WordPress WXR, Disqus): read by `exports`, the reader
  `moderation sites import` uses, so a history trains the global model the way it trains a site's own.
- What the package ships in `moderation/core/data/` (see its README): the starter corpus written for this
  project and normalised copies of the two public corpora, each checked against `SHA256SUMS` on load.

`source` is the corpus name ("youtube", "sms", "starter", or a site export's file stem); `group` is the
unit an honest split keeps together (a YouTube video, a WordPress post).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any

from moderation.comment import Comment, LabelledComment
from moderation.core.exports import load_export
from moderation.core.records import clean_text, csv_records, parse_json_line, parse_label, row_to_example
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


# --- public corpora ------------------------------------------------------------------------------------


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
        for where, row in csv_records(path, ("AUTHOR", "CONTENT", "CLASS")):
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


# --- what the package ships -------------------------------------------------------------------------------


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
        example = row_to_example(record, where, source, csv_row=False)
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
    """Load every corpus in `data_dir`: youtube-spam-collection/, sms-spam-collection/, and site exports
    (*.csv, *.jsonl in the generic format, *.xml from WordPress or Disqus; source = the file's stem).

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
        if path.suffix.lower() in (".csv", ".jsonl", ".xml"):
            examples += load_export(path)
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
    "counts",
    "dedup_key",
    "deduplicate",
    "fingerprint",
    "load_folder",
    "load_sms",
    "load_starter",
    "load_youtube",
]
