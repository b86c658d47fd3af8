"""The moderator's pages: the queue, one comment, search over everything, actions, undo, deliveries."""

from __future__ import annotations

import threading
from typing import Any

from flask import abort, current_app, flash, g, redirect, render_template, request, session, url_for
from sqlalchemy import func, select
from werkzeug.wrappers import Response

import moderation.web.review.actions as actions
import moderation.web.review.queries as queries
import moderation.web.review.render as render
from moderation.core.similar import near_duplicates
from moderation.store.schema import AuditEvent, CommentRecord, Site, WebhookDelivery
from moderation.web import webhooks
from moderation.web.review.auth import login_required, safe_next
from moderation.web.review.blueprint import MAX_ID, bp, db

UNDO_KEY = "undo"
SIMILAR_KEY = "similar"  # ids of the near-duplicates of the comments just marked as spam


def _sites() -> list[Site]:
    return list(db().scalars(select(Site).order_by(Site.name)))


# A threaded worker's first review pages may arrive together: one sender per process, not one per thread.
_creating_worker = threading.Lock()


def _worker() -> webhooks.DeliveryWorker | None:
    """This process's callback sender, or None under the test client (TESTING): tests drive
    `webhooks.deliver_due` themselves, and a thread would outlive the test's temporary database."""
    if current_app.testing:
        return None
    with _creating_worker:
        worker: webhooks.DeliveryWorker | None = current_app.extensions.get("review_webhooks")
        if worker is None:
            state = current_app.extensions["moderation"]
            worker = webhooks.DeliveryWorker(state.sessions, allow_private=state.settings["CALLBACK_ALLOW_PRIVATE"])
            current_app.extensions["review_webhooks"] = worker
    return worker


@bp.before_request
def _start_deliveries() -> None:
    # Started with the first page a moderator opens, so retries due after a restart go out even before
    # anyone decides anything; cron's `moderation webhooks deliver` covers processes nobody visits.
    worker = _worker()
    if worker is not None:
        worker.start()


def _wake_deliveries() -> None:
    """Send queued callbacks now, from this process's worker thread, never in the request."""
    worker = _worker()
    if worker is not None:
        worker.wake()


def comment_view(comment: CommentRecord) -> dict[str, Any]:
    """What a template needs to show one comment inertly: highlighted text, links, reasons, score band."""
    terms = render.trigger_terms(comment.reasons or [])
    return {
        "c": comment,
        "content": render.highlight(comment.content, terms),
        "author": render.highlight(comment.author_name, terms),
        "links": render.links_in(comment.content),
        "author_host": render.host_of(comment.author_url),
        "reasons": [render.highlight(str(r), terms) for r in (comment.reasons or [])],
        "band": render.score_band(comment.score),
    }


def _filters(default_sort: str = "oldest") -> queries.Filters:
    """The page's filters from its query string; 400 for one that cannot be searched for."""
    try:
        return queries.Filters.from_args(request.args, default_sort=default_sort)
    except queries.FilterError as exc:
        abort(400, str(exc))


@bp.get("/")
@login_required
def queue() -> str:
    """Held comments, oldest (or riskiest) first, with filters."""
    filters = _filters()
    page = queries.fetch(db(), filters, status="hold")
    return render_template(
        "review/queue.html",
        filters=filters,
        page=page,
        items=[comment_view(c) for c in page.items],
        sites=_sites(),
        sorts=queries.SORTS,
        decisions=queries.DECISIONS,
    )


@bp.get("/search")
@login_required
def search() -> str:
    """Every comment, whatever its status, to find and correct any decision."""
    filters = _filters(default_sort="newest")
    searched = any(request.args.get(k) for k in ("q", "site", "status", "decision", "since", "until"))
    page = queries.fetch(db(), filters)
    return render_template(
        "review/search.html",
        filters=filters,
        page=page,
        items=[comment_view(c) for c in page.items],
        searched=searched,
        sites=_sites(),
        sorts=queries.SORTS,
        statuses=queries.STATUSES,
        decisions=queries.DECISIONS,
    )


@bp.get("/comments/<int:comment_id>")
@login_required
def item(comment_id: int) -> str:
    """One comment in full: content, author, reasons, score, label history, audit trail, callbacks."""
    comment = db().get(CommentRecord, comment_id)
    if comment is None:
        abort(404)
    audit = db().scalars(select(AuditEvent).where(AuditEvent.comment_id == comment_id).order_by(AuditEvent.id))
    deliveries = db().scalars(
        select(WebhookDelivery).where(WebhookDelivery.comment_id == comment_id).order_by(WebhookDelivery.id)
    )
    return render_template(
        "review/item.html",
        item=comment_view(comment),
        audit=list(audit),
        deliveries=list(deliveries),
        next=safe_next(request.args.get("next"), url_for("review.queue")),
    )


def _apply(ids: list[int], action: str) -> Response:
    """Run an action, remember it for undo, tell the moderator, return to where they were."""
    back = safe_next(request.form.get("next"), url_for("review.queue"))
    if action not in actions.ACTIONS:
        abort(400, f"action: expected one of {', '.join(actions.ACTIONS)}, found {action!r}")
    if not ids:
        flash("Select at least one comment first.", "error")
        return redirect(back)
    outcome = actions.decide(db(), ids, action, actor=g.user.username)
    session[UNDO_KEY] = outcome.to_session()
    session.pop(SIMILAR_KEY, None)
    similar = _similar_to(list(outcome.previous)) if action == "spam" else []
    if outcome.delivery_ids:
        _wake_deliveries()
    noun = "comment" if outcome.count == 1 else "comments"
    flash(f"{actions.ACTIONS[action]} {outcome.count} {noun}.", "undo")
    if similar:
        session[SIMILAR_KEY] = similar
        noun = "comment is" if len(similar) == 1 else "comments are"
        flash(f"{len(similar)} similar {noun} still held or approved.", "similar")
    focus = request.form.get("focus", "")
    return redirect(back + (f"#c-{int(focus)}" if focus.isascii() and focus.isdigit() and len(focus) < 20 else ""))


def _similar_to(comment_ids: list[int]) -> list[int]:
    """Held or approved comments of the same sites that repeat the marked ones' wording (a campaign's copies)."""
    marked = db().scalars(select(CommentRecord).where(CommentRecord.id.in_(comment_ids))).all()
    if not marked:
        return []
    candidates = queries.open_comments(db(), {c.site_id for c in marked}, set(comment_ids))
    return near_duplicates([c.content for c in marked], candidates)[: actions.MAX_BULK]


@bp.post("/comments/<int:comment_id>/decide")
@login_required
def decide(comment_id: int) -> Response:
    """Approve, mark as spam or delete one comment (the per-item buttons)."""
    return _apply([comment_id], request.form.get("action", ""))


@bp.post("/bulk")
@login_required
def bulk() -> Response:
    """Apply one action to every selected comment."""
    # isdigit() alone accepts "²" (int() refuses it) and ids past BIGINT overflow the driver: both were 500s.
    given = request.form.getlist("ids")
    ids = [int(i) for i in given if i.isascii() and i.isdigit() and len(i) < 20 and int(i) <= MAX_ID]
    return _apply(ids, request.form.get("action", ""))


@bp.post("/undo")
@login_required
def undo() -> Response:
    """Revert the last action of this session."""
    back = safe_next(request.form.get("next"), url_for("review.queue"))
    data = session.pop(UNDO_KEY, None)
    if not data:
        flash("Nothing to undo.", "error")
        return redirect(back)
    outcome = actions.Outcome.from_session(data)
    restored = actions.undo(db(), outcome, actor=g.user.username)
    _wake_deliveries()
    flash(f"Undone: {restored} {'comment' if restored == 1 else 'comments'} back where they were.")
    return redirect(back)


@bp.get("/deliveries")
@login_required
def deliveries() -> str:
    """The callback log: what was sent to which site, how it went, what is still retrying."""
    status = request.args.get("status", "")
    query = select(WebhookDelivery).order_by(WebhookDelivery.id.desc()).limit(200)
    if status in ("pending", "delivered", "failed", "cancelled"):
        query = query.where(WebhookDelivery.status == status)
    counts: dict[str, int] = {
        status: count
        for status, count in db().execute(select(WebhookDelivery.status, func.count()).group_by(WebhookDelivery.status))
    }
    sites = {s.id: s for s in _sites()}
    return render_template(
        "review/deliveries.html", rows=list(db().scalars(query)), counts=counts, status=status, sites=sites
    )


@bp.post("/deliveries/<int:delivery_id>/retry")
@login_required
def retry_delivery(delivery_id: int) -> Response:
    """Try a failed callback again now."""
    if webhooks.retry(db(), delivery_id) is None:
        abort(404)
    db().commit()
    _wake_deliveries()
    flash("Retrying the callback.")
    return redirect(url_for("review.deliveries"))
