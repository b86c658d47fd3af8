"""`moderation retrain` and `moderation models list|show|promote|rollback`: the learning loop.

Thin commands: read the settings, open the database, call `retrain` or `registry`, print. Progress goes
to stderr, results to stdout. `retrain` exits 0 when the challenger was promoted (with --dry-run: would
be), 3 when it was not, 1 on errors (nothing changed), 2 on usage errors.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from moderation import settings
from moderation.cli.common import (
    MODEL_DIR_OPTION,
    data_folder,
    data_option,
    load_settings,
    model_folder,
    progress,
    user_errors,
)
from moderation.learning.retrain import RetrainOptions
from moderation.learning.retrain import retrain as run
from moderation.store import db, registry
from moderation.store.db import make_sessionmaker


@contextmanager
def _user_errors() -> Iterator[None]:
    """`user_errors`, and a file that cannot be written or read is one line too (exit status 1)."""
    try:
        with user_errors():
            yield
    except OSError as exc:  # a full disk, a read-only model folder: nothing was promoted
        where = f" ({exc.filename})" if exc.filename else ""
        message = f"cannot write or read a file{where}: {exc.strerror or exc}; nothing changed"
        raise click.ClickException(message) from exc


def _engine(values: dict[str, Any]) -> Any:
    engine = db.make_engine(settings.database_url(values))
    db.upgrade(engine)
    return engine


def _figure(value: float) -> str:
    return "   n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:6.3f}"


@click.command("retrain")
@click.option("--force", is_flag=True, help="Promote the challenger even when it is worse than the champion.")
@click.option("--dry-run", is_flag=True, help="Train and print the comparison; save, register and promote nothing.")
@click.option(
    "--sites-only",
    is_flag=True,
    help="Refit only the per-site models on the champion's global model (seconds per site) and promote that.",
)
@data_option("Folder of public corpora to train on besides the stored labels (default: MODERATION_DATA_DIR).")
@MODEL_DIR_OPTION
def retrain(force: bool, dry_run: bool, sites_only: bool, data_dir: Path | None, model_dir: Path | None) -> None:
    """Retrain on corpora + every stored label; promote only if not worse than the champion.

    With --sites-only, refit only each site's own model on the champion's global model (fast) and
    promote that. Exit status: 0 promoted (dry run: would be), 3 not promoted (dry run: would not be), 1 error.
    """
    values = load_settings()
    with _user_errors():
        options = RetrainOptions.from_settings(values, force=force, dry_run=dry_run, sites_only=sites_only)
        engine = _engine(values)
        try:
            result = run(engine, model_folder(model_dir), data_folder(data_dir), options, progress=progress)
        finally:
            engine.dispose()
    if sites_only:
        verb = "would promote" if result.dry_run else "promoted"
        click.echo(f"{verb} {result.challenger}: {result.training['sites_with_corrections']} site models, "
                   f"{result.reason}; {result.seconds:.0f} s")  # fmt: skip
        sys.exit(result.exit_code)
    click.echo(f"{'metric':<20} {'champion':>9} {'challenger':>10}")
    for name, pair in result.comparison.items():
        marker = " *" if name in options.metrics else ""
        click.echo(f"{name:<20} {_figure(pair['champion']):>9} {_figure(pair['challenger']):>10}{marker}")
    _print_holdout(result.holdout)
    click.echo(
        f"trained on {result.training.get('train', 0) + result.training.get('calibration', 0)} comments "
        f"({result.training.get('stored', 0)} stored), {result.training.get('sites_with_corrections', 0)} site "
        f"corrections, {result.seconds:.0f} s"
    )
    champion = result.champion or "none"
    if result.dry_run:
        verdict = "would promote" if result.would_promote else "would not promote"
        click.echo(f"dry run: {verdict} the challenger over {champion}: {result.reason}; nothing changed")
    elif result.promoted:
        click.echo(f"promoted {result.challenger} (was {champion}): {result.reason}")
    else:
        click.echo(f"kept {champion}; saved {result.challenger} as a candidate: {result.reason}")
    if result.pruned:
        click.echo(f"pruned {len(result.pruned)} old artifacts: {', '.join(result.pruned)}")
    sys.exit(result.exit_code)


def _print_holdout(held: dict[str, Any], shown: int = 10) -> None:
    """What the comparison held: totals, then each site's spam and ham, and the sites that could give none."""
    click.echo(f"held out: {held['n']} recent labels ({held['spam']} spam, {held['ham']} ham)")
    for title, sites in (("", held.get("sites", {})), ("left out (one class too rare) ", held.get("left_out", {}))):
        parts = [f"site {site}: {c['spam']} spam, {c['ham']} ham" for site, c in list(sites.items())[:shown]]
        if len(sites) > shown:
            parts.append(f"and {len(sites) - shown} more sites")
        if parts:
            click.echo(f"  {title}{'; '.join(parts)}")


@click.group("models")
def models() -> None:
    """List, inspect, promote and roll back registered models."""


def _session(values: dict[str, Any]) -> Any:
    return make_sessionmaker(_engine(values))()


@models.command("list")
def list_models() -> None:
    """List registered models, newest first, with their status and key metrics."""
    values = load_settings()
    with _user_errors(), _session(values) as session:
        rows = registry.list_versions(session)
        if not rows:
            click.echo("no registered models (run `moderation retrain`, or `moderation train` then retrain)")
            return
        click.echo(f"{'version':<30} {'status':<10} {'created':<20} {'promoted':<20} {'auc':>6} {'r@1%':>6}")
        for row in rows:
            metrics = row.manifest.get("metrics", {})
            figures = metrics.get("calibration") or metrics.get("pooled") or {}
            promoted = f"{row.promoted_at:%Y-%m-%d %H:%M:%S}" if row.promoted_at else "-"
            click.echo(
                f"{row.version:<30} {row.status:<10} {row.created_at:%Y-%m-%d %H:%M:%S}  {promoted:<20} "
                f"{_figure(figures.get('roc_auc', math.nan))} {_figure(figures.get('recall_at_1pct_fpr', math.nan))}"
            )


@models.command("show")
@click.argument("version")
def show(version: str) -> None:
    """Print one registered model's status and manifest as JSON."""
    values = load_settings()
    with _user_errors(), _session(values) as session:
        row = registry.get_version(session, version)
        payload = {
            "version": row.version,
            "status": row.status,
            "created_at": row.created_at.isoformat(),
            "promoted_at": row.promoted_at.isoformat() if row.promoted_at else None,
            "sha256": row.sha256,
            "manifest": row.manifest,
        }
    click.echo(json.dumps(payload, indent=2, sort_keys=True, default=str))


@models.command("promote")
@click.argument("version")
def promote(version: str) -> None:
    """Make VERSION the champion every worker serves (within MODEL_RELOAD_SECONDS)."""
    values = load_settings()
    with _user_errors(), _session(values) as session:
        registry.promote(session, version, actor="cli", model_dir=Path(values["MODEL_DIR"]))
    click.echo(f"promoted {version}")


@models.command("rollback")
def rollback() -> None:
    """Reject the champion and bring back the model promoted before it."""
    values = load_settings()
    with _user_errors(), _session(values) as session:
        row = registry.rollback(session, actor="cli", model_dir=Path(values["MODEL_DIR"]))
    click.echo(f"rolled back to {row.version}")


COMMANDS = (retrain, models)
