"""Site management for admins: keys, thresholds, block and allow lists, callback URL and secret."""

from __future__ import annotations

import secrets
from typing import Any

from flask import abort, current_app, flash, g, redirect, render_template, request, url_for
from sqlalchemy import func, select
from werkzeug.wrappers import Response

import moderation.web.review.forms as forms
from moderation.errors import ConfigError, DestinationRefused
from moderation.policy.decision import SiteSettings
from moderation.store import sites as site_store
from moderation.store.schema import AuditEvent, CommentRecord, Site
from moderation.web import destinations
from moderation.web.review.auth import admin_required
from moderation.web.review.blueprint import bp, db


def _site(site_id: int) -> Site:
    site = db().get(Site, site_id)
    if site is None:
        abort(404)
    return site


def _allow_private() -> bool:
    return bool(current_app.extensions["moderation"].settings["CALLBACK_ALLOW_PRIVATE"])


def _held_per_site() -> dict[int, int]:
    return {
        site_id: count
        for site_id, count in db().execute(
            select(CommentRecord.site_id, func.count())
            .where(CommentRecord.status == "hold")
            .group_by(CommentRecord.site_id)
        )
    }


def _sites_page(new_key: tuple[Site, str] | None = None) -> str:
    return render_template(
        "review/sites.html", sites=site_store.list_sites(db()), held=_held_per_site(), new_key=new_key
    )


@bp.get("/sites")
@admin_required
def sites() -> str:
    """Every site with its key hint, status and how many comments wait for review."""
    return _sites_page()


@bp.post("/sites")
@admin_required
def create_site() -> str | tuple[str, int]:
    """Create a site and show its key, once (rendered, not redirected, so the key never sits in a cookie)."""
    name = request.form.get("name", "").strip()[:200]
    url = request.form.get("url", "").strip()[:500]
    if not name:
        flash("A site needs a name.", "error")
        return _sites_page(), 400
    site, key = site_store.create_site(db(), name, url)
    db().add(AuditEvent(actor=g.user.username, action="site.create.ui", site_id=site.id, detail={"name": name}))
    db().commit()
    return _sites_page((site, key))


@bp.get("/sites/<int:site_id>")
@admin_required
def site(site_id: int) -> str:
    """One site's settings form."""
    current = _site(site_id)
    try:
        policy = SiteSettings.from_dict(current.settings)
    except ConfigError:
        policy = SiteSettings()
    return render_template("review/site.html", site=current, policy=policy, errors=[], own=_own_model(site_id))


def _own_model(site_id: int) -> dict[str, Any]:
    """The model this worker serves and what it holds for the site: its own model's labels, or none yet."""
    model = current_app.extensions["moderation"].models.get()
    adjustment = getattr(model, "sites", {}).get(site_id) if model is not None else None
    return {"version": getattr(model, "version", None), "site": adjustment}


@bp.post("/sites/<int:site_id>")
@admin_required
def update_site(site_id: int) -> Response | tuple[str, int]:
    """Save thresholds, rule limits, block/allow lists and the callback URL."""
    current = _site(site_id)
    changes, errors = forms.parse_settings(request.form)
    callback_url, url_error = forms.parse_callback_url(request.form.get("callback_url", ""))
    if url_error:
        errors.append(url_error)
    elif callback_url and callback_url != current.callback_url:
        try:
            destinations.check(callback_url, allow_private=_allow_private())
        except DestinationRefused as exc:
            errors.append(f"callback URL: {exc}")
    if not errors:
        try:
            SiteSettings.from_dict({**(current.settings or {}), **changes})
        except ConfigError as exc:
            errors.append(str(exc))
    if errors:
        try:
            policy = SiteSettings.from_dict({**(current.settings or {}), **changes})
        except ConfigError:
            policy = SiteSettings.from_dict(current.settings) if current.settings else SiteSettings()
        page = render_template("review/site.html", site=current, policy=policy, errors=errors, own=_own_model(site_id))
        return page, 400
    site_store.update_settings(db(), site_id, changes, actor=g.user.username)
    if callback_url != current.callback_url:
        db().add(
            AuditEvent(
                actor=g.user.username,
                action="site.callback",
                site_id=site_id,
                detail={"from": current.callback_url, "to": callback_url},
            )
        )
        current.callback_url = callback_url
        if callback_url and not current.callback_secret:
            current.callback_secret = secrets.token_hex(32)
        db().commit()
    flash(f"Saved the settings of {current.name}.")
    return redirect(url_for("review.site", site_id=site_id))


@bp.post("/sites/<int:site_id>/callback-secret")
@admin_required
def rotate_callback_secret(site_id: int) -> Response:
    """Replace the secret that signs this site's callbacks."""
    current = _site(site_id)
    current.callback_secret = secrets.token_hex(32)
    db().add(AuditEvent(actor=g.user.username, action="site.callback_secret", site_id=site_id, detail={}))
    db().commit()
    flash("New callback secret: update it on the site, or its signature checks will fail.")
    return redirect(url_for("review.site", site_id=site_id))


@bp.post("/sites/<int:site_id>/revoke")
@admin_required
def revoke_site(site_id: int) -> Response:
    """Revoke a site's key: its API calls are refused from now on; its comments stay."""
    _site(site_id)
    site_store.revoke_site(db(), site_id, actor=g.user.username)
    flash("Key revoked.")
    return redirect(url_for("review.sites"))
