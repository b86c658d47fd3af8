"""`moderation serve`, `sites ...`, `purge`, `export`: run and administer the comment-check service."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

import click
from sqlalchemy.orm import Session

from moderation import settings
from moderation.cli.common import MODEL_DIR_OPTION, model_folder, progress, user_errors
from moderation.cli.common import load_settings as load_common_settings
from moderation.core.exports import FORMATS, detect_format
from moderation.errors import ModerationError
from moderation.learning.retrain import RetrainOptions
from moderation.learning.site_import import import_history
from moderation.store import db
from moderation.store.privacy import export_site, parse_age
from moderation.store.privacy import purge as purge_comments
from moderation.store.sites import create_site, get_site, list_sites, revoke_site, rotate_key, update_settings
from moderation.web.app import load_settings
from moderation.web.limits import parse_limit
from moderation.web.serving import ensure_model, prometheus_dir, run_gunicorn


@contextmanager
def _session() -> Iterator[Session]:
    """A session on the configured database, migrated to the newest schema; errors become one clear line."""
    try:
        values = settings.load()
        engine = db.make_engine(settings.database_url(values))
        db.upgrade(engine)
    except ModerationError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        with db.make_sessionmaker(engine)() as session:
            yield session
    except ModerationError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        engine.dispose()


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option("--workers", type=click.IntRange(1, 64), default=None, help="Worker processes [MODERATION_WORKERS].")
@click.option("--threads", type=click.IntRange(1, 256), default=None, help="Threads per worker [MODERATION_THREADS].")
@click.option("--access-log/--no-access-log", default=True, show_default=True, help="Log each request to stdout.")
def serve(host: str, port: int, workers: int | None, threads: int | None, access_log: bool) -> None:
    """Run the service with gunicorn: migrate the database, train a model if there is none, serve."""
    try:
        values = load_settings()
        engine = db.make_engine(settings.database_url(values))
        db.upgrade(engine)
        engine.dispose()
        if values["TRAIN_ON_START"]:
            data_dir = Path(values["DATA_DIR"]) if values["DATA_DIR"] else None
            ensure_model(Path(values["MODEL_DIR"]), data_dir, progress=click.echo)
    except ModerationError as exc:
        raise click.ClickException(str(exc)) from exc
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(prometheus_dir(Path(values["INSTANCE_PATH"])))
    count = workers or values["WORKERS"]
    per_worker = threads or values["THREADS"]
    if per_worker < 1:
        raise click.ClickException(f"MODERATION_THREADS: expected a positive number, found {per_worker}")
    click.echo(f"serving on http://{host}:{port} with {count} workers, {per_worker} thread(s) each")
    run_gunicorn(
        host,
        port,
        count,
        threads=per_worker,
        control_socket=values["CONTROL_SOCKET"],
        extra=None if access_log else {"accesslog": None},
    )


@click.group()
def sites() -> None:
    """Manage the sites allowed to call the API and their keys."""


@sites.command("add")
@click.argument("name")
@click.option("--url", default="", help="The site's address, for humans.")
def sites_add(name: str, url: str) -> None:
    """Add a site and print its API key and signing secret (shown only now)."""
    with _session() as session:
        site, key = create_site(session, name, url)
        click.echo(f"site {site.id}: {site.name}")
        click.echo(f"api key: {key}")
        click.echo(f"signing secret: {site.signing_secret}")


@sites.command("list")
def sites_list() -> None:
    """List sites: id, name, key hint, state."""
    with _session() as session:
        for site in list_sites(session):
            state = f"revoked {site.revoked_at:%Y-%m-%d}" if site.revoked_at else "active"
            click.echo(f"{site.id}\t{site.name}\t{site.url}\t{site.key_hint}…\t{state}")


@sites.command("revoke")
@click.argument("site_id", type=int)
def sites_revoke(site_id: int) -> None:
    """Revoke a site's key; its comments stay."""
    with _session() as session:
        site = revoke_site(session, site_id)
        click.echo(f"revoked site {site.id} ({site.name})")


@sites.command("rotate")
@click.argument("site_id", type=int)
def sites_rotate(site_id: int) -> None:
    """Give a site a new API key and print it (shown only now); the old key stops working."""
    with _session() as session:
        site, key = rotate_key(session, site_id)
        click.echo(f"site {site.id}: {site.name}")
        click.echo(f"api key: {key}")


@sites.command("set")
@click.argument("site_id", type=int)
@click.argument("name")
@click.argument("value")
def sites_set(site_id: int, name: str, value: str) -> None:
    """Set one policy setting of a site: VALUE is JSON (0.9, true, ["casino", "192.0.2."]) or plain text.

    `rate_limit` (like 6000/minute) gives the site a budget of its own instead of MODERATION_RATELIMIT_SITE.
    """
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        parsed = value
    if name == "rate_limit":
        try:
            parse_limit(str(parsed), "rate_limit")
        except ModerationError as exc:
            raise click.ClickException(str(exc)) from exc
    with _session() as session:
        site = update_settings(session, site_id, {name: parsed})
        click.echo(json.dumps(site.settings, ensure_ascii=False, sort_keys=True))


@sites.command("import")
@click.argument("site_id", type=int)
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default=None,
    help="wxr (WordPress), disqus, csv or jsonl; default: from the extension (.xml: from its root element).",
)
@MODEL_DIR_OPTION
def sites_import(site_id: int, file: Path, fmt: str | None, model_dir: Path | None) -> None:
    """Store FILE's moderated comments as the site's labelled history and fit the site's own model at once.

    WordPress WXR (approved → ham, spam → spam; pending and trash skipped), Disqus (isSpam → spam,
    isDeleted skipped, else ham), or CSV/JSONL with content and label. All or nothing: a bad row stops the
    import naming file and line, and nothing is stored.
    """
    values = load_common_settings()
    with user_errors():
        options = RetrainOptions.from_settings(values)
        engine = db.make_engine(settings.database_url(values))
        db.upgrade(engine)
        try:
            result = import_history(
                engine, model_folder(model_dir), site_id, file, fmt or detect_format(file), options, progress=progress
            )
        finally:
            engine.dispose()
    skipped = ", ".join(f"{n} {reason}" for reason, n in sorted(result.skipped.items()))
    click.echo(
        f"site {site_id}: stored {result.stored} comments ({result.spam} spam, {result.ham} ham)"
        + (f"; {result.already} already imported" if result.already else "")
        + (f"; skipped {skipped}" if skipped else "")
    )
    if result.version is None:
        click.echo("no model to refit yet (run `moderation train`); the next retrain fits this site's model")
    elif result.site_model_labels:
        click.echo(f"serving {result.version}: the site's own model learned from {result.site_model_labels} labels")
    else:
        click.echo(f"serving {result.version}: too few labels of both kinds for a model of the site's own yet")


@click.command()
@click.option("--older-than", default=None, help="Age like 90d, 12h or 2w [MODERATION_RETENTION_DAYS].")
@click.option("--delete", "delete_rows", is_flag=True, help="Delete the comments instead of blanking personal data.")
def purge(older_than: str | None, delete_rows: bool) -> None:
    """Remove personal data (author, email, URL, IP, user agent, referrer) from comments past retention."""
    try:
        age = parse_age(older_than or f"{settings.load()['RETENTION_DAYS']}d")
    except ModerationError as exc:
        raise click.ClickException(str(exc)) from exc
    with _session() as session:
        count = purge_comments(session, age, delete_rows=delete_rows)
    click.echo(f"{'deleted' if delete_rows else 'purged personal data of'} {count} comments older than {age.days} days")


@click.command()
@click.option("--site", "site_id", type=int, required=True, help="The site whose data to export.")
@click.option("--output", type=click.File("w", encoding="utf-8"), default="-", help="File to write (default stdout).")
def export(site_id: int, output: TextIO) -> None:
    """Export a site's comments, verdicts and labels as JSON lines."""
    with _session() as session:
        get_site(session, site_id)
        for line in export_site(session, site_id):
            output.write(line + "\n")


COMMANDS = (serve, sites, purge, export)
