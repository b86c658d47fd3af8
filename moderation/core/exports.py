"""A site's moderated history, read from another system's export: WordPress WXR, Disqus, or generic CSV/JSONL.

    read_export(path, fmt) -> Export           every labelled comment, with its date and file:line
    detect_format(path) -> "wxr" | "disqus" | "csv" | "jsonl"
    load_export(path) -> [LabelledComment]     the same, as training examples (a data folder's exports)

Labels: WordPress `wp:comment_approved` 1 → ham, spam → spam, 0 (pending) and trash skipped (a
moderator's bin says nothing reliable about spam); Disqus `isSpam` true → spam, `isDeleted` true (not
spam) skipped, otherwise ham; CSV/JSONL: the `label` field (records.row_to_example's format, plus an
optional `created_at`). An export is attacker-written text: XML is parsed with defusedxml (no DTDs, so
no entity expansion bombs and no external entities). Anything unexpected raises DataError naming the file
and line — the whole file is read before anything is stored, so a bad row leaves nothing half-imported.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser, ParseError, _TreeBuilder

from moderation.comment import Comment, Label, LabelledComment
from moderation.core.records import GENERIC_REQUIRED, clean_text, csv_records, jsonl_rows, row_to_example
from moderation.errors import DataError

FORMATS = ("wxr", "disqus", "csv", "jsonl")
CHUNK_BYTES = 1 << 20  # XML is fed to the parser a megabyte at a time, with progress between chunks


@dataclass(frozen=True)
class ExportedComment:
    """One labelled comment of an export: the comment, its label, when it was written (if known), where it was,
    and the unit an honest split keeps together (`file stem:post` for WordPress, `:thread` for Disqus)."""

    comment: Comment
    label: Label
    created_at: datetime | None
    where: str
    group: str


@dataclass
class Export:
    """What an export held: its labelled comments, and how many comments were skipped for each reason."""

    comments: list[ExportedComment] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    """Say nothing."""


def detect_format(path: Path) -> str:
    """The format of `path` from its extension, or for .xml from its root element; DataError when unknown."""
    suffix = Path(path).suffix.lower()
    if suffix in (".csv", ".jsonl"):
        return suffix[1:]
    if suffix != ".xml":
        raise DataError(f"{path}: cannot tell the format from {suffix or 'no extension'!r}; pass --format")
    try:
        with Path(path).open("rb") as handle:
            head = handle.read(4096).decode("utf-8", "replace")
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if re.search(r"<disqus[\s>]", head):
        return "disqus"
    if re.search(r"<rss[\s>]", head):
        return "wxr"
    raise DataError(
        f"{path}: expected a WordPress WXR (<rss>) or Disqus (<disqus>) export, found neither; pass --format"
    )


def read_export(path: Path, fmt: str, progress: Progress = _quiet) -> Export:
    """Every labelled comment of the export at `path` in format `fmt` (one of FORMATS); DataError naming file:line."""
    path = Path(path)
    if fmt not in FORMATS:
        raise DataError(f"expected a format among {', '.join(FORMATS)}, found {fmt!r}")
    if fmt in ("csv", "jsonl"):
        return _read_generic(path, fmt, progress)
    root, lines = _parse_xml(path, progress)
    return _read_wxr(path, root, lines) if fmt == "wxr" else _read_disqus(path, root, lines)


def load_export(path: Path) -> list[LabelledComment]:
    """The labelled comments of the export at `path` (format from `detect_format`) as training examples,
    source = the file's stem."""
    path = Path(path)
    export = read_export(path, detect_format(path))
    return [LabelledComment(c.comment, c.label, path.stem, c.group) for c in export.comments]


# --- XML ----------------------------------------------------------------------------------------------------


def _parse_xml(path: Path, progress: Progress) -> tuple[Any, dict[int, int]]:
    """The root element of a safely parsed XML file, and each element's line (by id of the element)."""
    lines: dict[int, int] = {}

    class Builder(_TreeBuilder):
        def start(self, tag: Any, attrs: Any) -> Any:
            element = super().start(tag, attrs)
            lines[id(element)] = parser.parser.CurrentLineNumber
            return element

    parser = DefusedXMLParser(target=Builder(), forbid_dtd=True)
    size = max(path.stat().st_size, 1) if path.exists() else 1
    done = 0
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(CHUNK_BYTES):
                parser.feed(chunk)
                done += len(chunk)
                if size > CHUNK_BYTES:
                    progress(f"  read {done / 1e6:.0f} of {size / 1e6:.0f} MB")
        root = parser.close()
    except DefusedXmlException as exc:
        line = parser.parser.CurrentLineNumber
        raise DataError(
            f"{path}:{line}: refused unsafe XML ({type(exc).__name__}: DTDs and entities are not allowed)"
        ) from exc
    except ParseError as exc:
        line = getattr(exc, "position", (parser.parser.CurrentLineNumber, 0))[0]
        raise DataError(f"{path}:{line}: expected well-formed XML, found {exc}") from exc
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return root, lines


def _local(tag: Any) -> str:
    """An element's name without its namespace."""
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _children(element: Any) -> dict[str, Any]:
    """The direct children of an element by local name (the first of each)."""
    found: dict[str, Any] = {}
    for child in element:
        found.setdefault(_local(child.tag), child)
    return found


def _text(element: Any) -> str:
    return "" if element is None else (element.text or "")


def _attribute(element: Any, name: str) -> str:
    """An attribute by local name, whatever its namespace (Disqus writes `dsq:id`)."""
    return next((value for key, value in element.attrib.items() if _local(key) == name), "")


def _date(text: str, where: str, formats: tuple[str, ...]) -> datetime | None:
    """A UTC datetime from `text` in one of `formats`; None when empty or WordPress's zero date."""
    text = text.strip()
    if not text or text.startswith("0000-00-00"):
        return None
    for pattern in formats:
        try:
            return datetime.strptime(text, pattern).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise DataError(f"{where}: expected a date like {datetime(2024, 1, 31, 12).strftime(formats[0])}, found {text!r}")


_WXR_LABELS = {"1": Label.HAM, "spam": Label.SPAM}
_WXR_SKIPPED = {"0": "pending", "trash": "trash", "post-trashed": "trash"}


def _read_wxr(path: Path, root: Any, lines: dict[int, int]) -> Export:
    if _local(root.tag) != "rss":
        raise DataError(
            f"{path}:{lines.get(id(root), 1)}: expected a WordPress WXR export (<rss>), found <{_local(root.tag)}>"
        )
    export = Export()
    for item in root.iter("item"):
        post = _children(item)
        key = _text(post.get("post_name")) or _text(post.get("post_id")) or _text(post.get("title"))
        for element in item:
            if _local(element.tag) == "comment" and "wordpress.org/export" in element.tag:
                _add_wxr_comment(export, element, f"{path}:{lines.get(id(element), 0)}", f"{path.stem}:{key}")
    return export


def _add_wxr_comment(export: Export, element: Any, where: str, group: str) -> None:
    fields = {name: _text(child) for name, child in _children(element).items()}
    approved = fields.get("comment_approved", "").strip()
    if approved in _WXR_SKIPPED:
        export.skip(_WXR_SKIPPED[approved])
        return
    if approved not in _WXR_LABELS:
        raise DataError(f"{where}: expected wp:comment_approved 1, 0, spam or trash, found {approved!r}")
    content = clean_text(fields.get("comment_content", ""))
    if not content.strip():
        export.skip("empty")
        return
    comment = Comment(
        content=content,
        author_name=clean_text(fields.get("comment_author", "")),
        author_email=clean_text(fields.get("comment_author_email", "")),
        author_url=clean_text(fields.get("comment_author_url", "")),
        user_ip=clean_text(fields.get("comment_author_IP", "")),
        comment_type=clean_text(fields.get("comment_type", "")),
    )
    created = _date(fields.get("comment_date_gmt", ""), where, ("%Y-%m-%d %H:%M:%S",))
    export.comments.append(ExportedComment(comment, _WXR_LABELS[approved], created, where, group))


_TAG = re.compile(r"<[^>]*>")
_HREF = re.compile(r"""<a\s[^>]*?href\s*=\s*["']([^"']*)["'][^>]*>""", re.IGNORECASE)
_BOOLEANS = {"true": True, "false": False, "1": True, "0": False, "": False}


def disqus_text(message: str) -> str:
    """A Disqus message's HTML as plain text, keeping link targets (spam hides them in anchors)."""
    text = _HREF.sub(lambda m: f" {m.group(1)} ", message)
    return clean_text(re.sub(r"\s+", " ", html.unescape(_TAG.sub(" ", text))).strip())


def _flag(fields: dict[str, Any], name: str, where: str) -> bool:
    raw = _text(fields.get(name)).strip().lower()
    if raw not in _BOOLEANS:
        raise DataError(f"{where}: expected {name} true or false, found {raw!r}")
    return _BOOLEANS[raw]


def _read_disqus(path: Path, root: Any, lines: dict[int, int]) -> Export:
    if _local(root.tag) != "disqus":
        raise DataError(
            f"{path}:{lines.get(id(root), 1)}: expected a Disqus export (<disqus>), found <{_local(root.tag)}>"
        )
    export = Export()
    for element in root:
        if _local(element.tag) != "post":
            continue
        where = f"{path}:{lines.get(id(element), 0)}"
        fields = _children(element)
        spam, deleted = _flag(fields, "isSpam", where), _flag(fields, "isDeleted", where)
        if deleted and not spam:
            export.skip("deleted")
            continue
        content = disqus_text(_text(fields.get("message")))
        if not content:
            export.skip("empty")
            continue
        author = _children(fields["author"]) if "author" in fields else {}
        comment = Comment(
            content=content,
            author_name=clean_text(_text(author.get("name"))),
            author_email=clean_text(_text(author.get("email"))),
            user_ip=clean_text(_text(fields.get("ipAddress"))),
        )
        created = _date(_text(fields.get("createdAt")), where, ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S"))
        thread = fields.get("thread")
        group = f"{path.stem}:{_attribute(thread, 'id') if thread is not None else ''}"
        export.comments.append(ExportedComment(comment, Label.SPAM if spam else Label.HAM, created, where, group))
    return export


# --- CSV and JSON lines ------------------------------------------------------------------------------------------


def _read_generic(path: Path, fmt: str, progress: Progress) -> Export:
    rows: Iterator[tuple[str, dict[str, Any]]] = (
        csv_records(path, GENERIC_REQUIRED) if fmt == "csv" else jsonl_rows(path)
    )
    export = Export()
    for n, (where, row) in enumerate(rows, start=1):
        example = row_to_example(row, where, path.stem, csv_row=fmt == "csv")
        created = _date(
            str(row.get("created_at") or ""),
            where,
            ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"),
        )
        export.comments.append(ExportedComment(example.comment, example.label, created, where, example.group))
        if n % 10000 == 0:
            progress(f"  read {n} rows")
    return export


__all__ = ["FORMATS", "Export", "ExportedComment", "detect_format", "disqus_text", "load_export", "read_export"]
