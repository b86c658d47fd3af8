"""`moderation train`, `moderation evaluate`, `moderation check`: build, measure and try spam models.

Thin commands: parse options, call `training`, `evaluation` or the loaded model, print. Long work
reports progress on stderr; results go to stdout. A `ModerationError` (no model, a bad data folder, a
bad input line) becomes one clear line and a non-zero exit.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, TextIO

import click

from moderation.cli.common import MODEL_DIR_OPTION, data_folder, data_option, model_folder, progress, user_errors
from moderation.comment import SENDER_FIELDS, Comment, Decision
from moderation.core.corpora import parse_json_line
from moderation.core.evaluation import DEFAULT_PROTOCOLS, MODELS, run_evaluation, write_report
from moderation.core.model_store import load_model
from moderation.core.training import train_and_save
from moderation.errors import DataError

# Comment fields `check --jsonl` accepts; each must be a string when present (content is required).
COMMENT_FIELDS = ("content", *SENDER_FIELDS)
MAX_REASONS = 5
JSONL_BATCH = 500  # lines scored per batch: score_many is much faster per comment than one at a time


@click.command("train")
@data_option("Folder of corpora to train on besides the starter corpus (default: MODERATION_DATA_DIR).")
@MODEL_DIR_OPTION
@click.option("--no-promote", is_flag=True, help="Save the model without making it the current one.")
def train(data_dir: Path | None, model_dir: Path | None, no_promote: bool) -> None:
    """Train a model on the starter corpus plus a folder of corpora, save it and make it current."""
    folder = model_folder(model_dir)
    with user_errors():
        manifest = train_and_save(folder, data_folder(data_dir), make_current=not no_promote, progress=progress)
    t, pooled = manifest.thresholds, manifest.metrics["pooled"]
    click.echo(f"model {manifest.version} saved in {folder}{'' if no_promote else ' and made current'}")
    click.echo(f"thresholds: hold {t['hold']:.3f}, spam {t['spam']:.3f}, discard {t['discard']:.3f}")
    click.echo(
        f"out of fold (training data, not a benchmark): ROC AUC {pooled['roc_auc']:.3f}, "
        f"ham blocked {pooled['ham_blocked']:.2%}, spam caught {pooled['spam_caught']:.1%}"
    )


@click.command("evaluate")
@data_option("Folder holding youtube-spam-collection/ and sms-spam-collection/ (default: MODERATION_DATA_DIR).")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("evaluation"),
    show_default=True,
    help="Folder for report.md, results.json and the PNG plots.",
)
@click.option(
    "--protocol",
    "protocols",
    multiple=True,
    type=click.Choice(["lovo", "lovo-youtube", "sms-domain", "sms-cv"]),
    help="Run only these protocols (repeatable; default: lovo, sms-domain, sms-cv).",
)
def evaluate(data_dir: Path | None, out_dir: Path, protocols: tuple[str, ...]) -> None:
    """Measure the model against a plain baseline on grouped, deduplicated splits and write a report."""
    folder = data_folder(data_dir)
    with user_errors():
        if folder is None:
            raise DataError("no data folder: pass --data DIR or set MODERATION_DATA_DIR (see `moderation datasets`)")
        result = run_evaluation(folder, protocols=protocols or DEFAULT_PROTOCOLS, progress=progress)
        report = write_report(result, out_dir)
    for protocol in result.protocols():
        for model in MODELS:
            m = result.mean(protocol, model)
            click.echo(
                f"{protocol:<13} {model:<8} MCC {m['mcc']:.3f}  ROC AUC {m['roc_auc']:.3f}  "
                f"ham blocked {m['ham_blocked']:.2%}  spam caught {m['spam_caught']:.1%}"
            )
    click.echo(f"report: {report}")


def _verdict(score: Any, thresholds: Any) -> dict[str, Any]:
    """The JSON verdict for one score: decision from the model's thresholds, clues pointing that way."""
    decision = thresholds.decide(score.probability)
    towards_spam = decision != Decision.APPROVE
    clues = sorted((c for c in score.clues if (c.weight > 0) == towards_spam), key=lambda c: -abs(c.weight))
    return {
        "score": round(float(score.probability), 6),
        "decision": str(decision),
        "reasons": [c.text for c in clues[:MAX_REASONS]],
        "model_version": score.model_version,
    }


def _parse_line(line: str, number: int) -> tuple[Any, Any]:
    """Parse one `--jsonl` line into (id or None, Comment); DataError naming the line when it is not one."""
    record = parse_json_line(line, f"stdin line {number}")
    content = record.get("content")
    if not isinstance(content, str):
        raise DataError(f"stdin line {number}: expected a 'content' string, found {type(content).__name__}")
    fields: dict[str, Any] = {}
    for name in COMMENT_FIELDS:
        value = record.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise DataError(f"stdin line {number}: expected {name!r} to be a string, found {type(value).__name__}")
        fields[name] = value
    return record.get("id"), Comment(**fields)


def _check_stream(model: Any, stream: TextIO) -> None:
    """Score comment objects from `stream` in batches, printing one verdict per line as each batch is done."""
    batch: list[tuple[Any, Any]] = []

    def flush() -> None:
        scores = model.score_many([comment for _, comment in batch])
        for (ident, _), score in zip(batch, scores, strict=True):
            verdict = _verdict(score, model.thresholds)
            if ident is not None:
                verdict = {"id": ident, **verdict}
            click.echo(json.dumps(verdict, ensure_ascii=False))
        batch.clear()

    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        batch.append(_parse_line(line, number))
        if len(batch) >= JSONL_BATCH:
            flush()
    if batch:
        flush()


@click.command("check")
@click.option("--content", help="The comment text.")
@click.option("--author-name", default="", help="The name the commenter gave.")
@click.option("--author-email", default="", help="The commenter's email address.")
@click.option("--author-url", default="", help="The commenter's website.")
@click.option("--user-ip", default="", help="The commenter's IP address.")
@click.option("--user-agent", default=None, help="The browser's User-Agent header (omit when unknown).")
@click.option("--referrer", default="", help="The page that linked to the comment form.")
@click.option("--permalink", default="", help="The page the comment was posted on.")
@click.option("--comment-type", default="", help="comment, reply, contact-form, …")
@click.option("--jsonl", is_flag=True, help="Read one comment object per line from stdin; print one verdict per line.")
@MODEL_DIR_OPTION
@click.option("--model-version", help="Use this saved version instead of the current one.")
def check(jsonl: bool, model_dir: Path | None, model_version: str | None, content: str | None, **fields: Any) -> None:
    """Score a comment (or, with --jsonl, many) with the current model and print JSON verdicts.

    The decision comes from the model's own thresholds only; the service adds its rules on top.
    """
    with user_errors():
        if not jsonl and content is None:
            raise DataError("nothing to check: pass --content TEXT, or --jsonl with comment objects on stdin")
        if jsonl and content is not None:
            raise DataError("--content and --jsonl exclude each other: give one comment or a stream")
        model = load_model(model_folder(model_dir), model_version)
        if jsonl:
            _check_stream(model, sys.stdin)
        else:
            score = model.score(Comment(content=content or "", **fields))
            click.echo(json.dumps(_verdict(score, model.thresholds), ensure_ascii=False))


COMMANDS = (train, evaluate, check)
