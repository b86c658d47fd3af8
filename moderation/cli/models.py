"""`moderation train`, `moderation evaluate`, `moderation check`: build, measure and try spam models.

Thin commands: parse options, call `training`, `evaluation` or the loaded model, print. Long work
reports progress on stderr; results go to stdout. A `ModerationError` (no model, a bad data folder, a
bad input line) becomes one clear line and a non-zero exit.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import click

from moderation import settings
from moderation.checking.check import check_and_store, recheck, site_settings
from moderation.cli.common import (
    MODEL_DIR_OPTION,
    data_folder,
    data_option,
    load_settings,
    model_folder,
    progress,
    user_errors,
)
from moderation.comment import SENDER_FIELDS, Comment, Verdict
from moderation.core.classifier import Scorer
from moderation.core.evaluation import DEFAULT_PROTOCOLS, MODELS, run_evaluation, write_report
from moderation.core.model_store import load_model
from moderation.core.records import page_context, parse_json_line
from moderation.core.training import train_and_save
from moderation.errors import DataError
from moderation.store import db
from moderation.store.sites import get_site

# Comment fields `check --jsonl` accepts; each must be a string when present (content is required).
COMMENT_FIELDS = ("content", *SENDER_FIELDS)


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
@data_option("Folder of corpora to add to the shipped ones (default: MODERATION_DATA_DIR).")
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
    type=click.Choice(["unseen", "lovo", "lovo-youtube", "sms-domain", "sms-cv"]),
    help="Run only these protocols (repeatable; default: unseen, lovo, sms-domain, sms-cv).",
)
def evaluate(data_dir: Path | None, out_dir: Path, protocols: tuple[str, ...]) -> None:
    """Measure the model against a plain baseline on grouped, deduplicated splits and write a report."""
    with user_errors():
        result = run_evaluation(data_folder(data_dir), protocols=protocols or DEFAULT_PROTOCOLS, progress=progress)
        report = write_report(result, out_dir)
    for protocol in result.protocols():
        for model in MODELS:
            m = result.mean(protocol, model)
            click.echo(
                f"{protocol:<13} {model:<8} MCC {m['mcc']:.3f}  ROC AUC {m['roc_auc']:.3f}  "
                f"ham blocked {m['ham_blocked']:.2%}  spam caught {m['spam_caught']:.1%}"
            )
    click.echo(f"report: {report}")


def _verdict(verdict: Verdict) -> dict[str, Any]:
    """The JSON form of a verdict, as the API answers it."""
    return {
        "score": None if verdict.score is None else round(float(verdict.score), 6),
        "decision": str(verdict.decision),
        "reasons": list(verdict.reasons),
        "rules": list(verdict.rules),
        "model_version": verdict.model_version,
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
    context = page_context(record.get("page_title"), record.get("page_tags"))
    return record.get("id"), Comment(**fields, page_context=context)


def _comments(stream: TextIO) -> Iterator[tuple[Any, Comment]]:
    """(id or None, Comment) for each non-blank `--jsonl` line of `stream`."""
    for number, line in enumerate(stream, start=1):
        if line.strip():
            yield _parse_line(line, number)


@contextmanager
def _site_checker(model: Scorer, site_id: int | None, store: bool) -> Iterator[Callable[[Comment], Verdict]]:
    """A function giving each comment's verdict through the service's check path: for `site_id` with its
    policy, history and own model (storing each comment with `store`), or with the default policy alone."""
    if site_id is None:
        if store:
            raise DataError("--store needs --site: a stored comment belongs to a site")
        yield lambda comment: recheck(comment, model=model)
        return
    engine = db.make_engine(settings.database_url(load_settings()))
    try:
        with db.make_sessionmaker(engine)() as session:
            policy = site_settings(get_site(session, site_id))
        if store:
            yield lambda comment: check_and_store(engine, site_id, policy, comment, model=model, source="cli").verdict
            return
        with engine.connect() as connection:
            yield lambda comment: recheck(comment, model=model, settings=policy, site_id=site_id, connection=connection)
    finally:
        engine.dispose()


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
@click.option("--site", "site_id", type=int, help="Check as this site's comments: its policy, history and own model.")
@click.option("--store", is_flag=True, help="With --site: store each comment and its verdict, as the API does.")
@MODEL_DIR_OPTION
@click.option("--model-version", help="Use this saved version instead of the current one.")
def check(
    jsonl: bool,
    site_id: int | None,
    store: bool,
    model_dir: Path | None,
    model_version: str | None,
    content: str | None,
    **fields: Any,
) -> None:
    """Check a comment (or, with --jsonl, many) through the service's check path and print JSON verdicts.

    Without --site: the rules that need only the comment, the model and the default policy. With
    --site: that site's policy, its history in the database and its own model, read-only unless --store.
    """
    with user_errors():
        if not jsonl and content is None:
            raise DataError("nothing to check: pass --content TEXT, or --jsonl with comment objects on stdin")
        if jsonl and content is not None:
            raise DataError("--content and --jsonl exclude each other: give one comment or a stream")
        model = load_model(model_folder(model_dir), model_version)
        comments = _comments(sys.stdin) if jsonl else iter([(None, Comment(content=content or "", **fields))])
        with _site_checker(model, site_id, store) as verdict_of:
            for ident, comment in comments:
                answer = _verdict(verdict_of(comment))
                click.echo(json.dumps(answer if ident is None else {"id": ident, **answer}, ensure_ascii=False))


COMMANDS = (train, evaluate, check)
