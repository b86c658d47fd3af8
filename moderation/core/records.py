"""Labelled comment records read from files: CSV rows, JSON lines, the generic site-export row, labels.

The plumbing the corpus loaders (`corpora`) and the site-export readers (`exports`) share. Every reader
names the file and line of the first bad record in a DataError; text is kept as written apart from BOM
and zero-width characters.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from moderation.comment import Comment, Label, LabelledComment
from moderation.errors import DataError

# BOM and zero-width characters: invisible, so they carry no meaning for a reader, but in the YouTube
# set a trailing U+FEFF marks most ham and a model would learn it.
_INVISIBLE = dict.fromkeys(map(ord, "\ufeff\u200b\u200c\u200d\u2060\u180e\u00ad"), None)

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



def csv_records(path: Path, required: Sequence[str]) -> Iterator[tuple[str, dict[str, Any]]]:
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



def optional_text(value: object) -> str:
    return "" if value is None else clean_text(str(value))


def row_to_example(row: Mapping[str, Any], where: str, source: str, *, csv_row: bool) -> LabelledComment:
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
        author_name=optional_text(row.get("author_name")),
        author_email=optional_text(row.get("author_email")),
        author_url=optional_text(row.get("author_url")),
        user_ip=optional_text(row.get("user_ip")),
        user_agent=user_agent,
        language=optional_text(row.get("lang") or row.get("language")),
        page_context=page_context(row.get("page_title"), row.get("page_tags")),
    )
    group = optional_text(row.get("group")) or source
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


def jsonl_rows(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
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


__all__ = [
    "GENERIC_REQUIRED",
    "clean_text",
    "csv_records",
    "jsonl_rows",
    "optional_text",
    "page_context",
    "parse_json_line",
    "parse_label",
    "row_to_example",
]
