"""The review UI in Debian's Chromium against a real server and database: mouse, keyboard, payloads, CSRF,
callbacks, screenshots of every main page."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from review_helpers import PASSWORD, add_comment, add_site, add_user
from webhook_receiver import Receiver

from moderation.store.schema import CommentRecord, LabelRecord, ModelVersion, WebhookDelivery
from moderation.web import webhooks

pytestmark = pytest.mark.browser

XSS_CONTENT = (
    "Nice post!<script>window.__xss = 1; alert('script')</script>"
    "<img src=x onerror=\"window.__xss = 2; alert('img')\">"
    "<svg onload=\"alert('svg')\"></svg><iframe srcdoc=\"<script>parent.alert('frame')</script>\"></iframe>"
    '<a href="javascript:alert(\'link\')">click me</a> "><b>bold</b>'
)
XSS_AUTHOR = '<img src=x onerror="alert(\'author\')"><script>alert("name")</script>'


def _login(page, server, name: str = "alice") -> None:
    page.goto(server.url + "/review/login")
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(server.url + "/review/")


def _status(server, comment_id: int) -> str:
    with server.sessions() as session:
        return session.get(CommentRecord, comment_id).status


def _seed_queue(server) -> tuple[int, list[int]]:
    """A site and four held comments (oldest first), with reasons quoting trigger words and links."""
    site_id, _ = add_site(server.sessions, "Travel blog")
    ids = [
        add_comment(
            server.sessions,
            site_id,
            "Check out my channel http://bit.ly/abc123 and subscribe for daily giveaways!!!",
            author_name="Best Music Promo",
            author_email="promo@mail.example",
            author_url="http://promo-music.example",
            user_ip="203.0.113.7",
            score=0.74,
            reasons=["1 link to a URL shortener", "phrase 'check out my channel'", "word 'subscribe'"],
            minutes_ago=90,
        ),
        add_comment(
            server.sessions,
            site_id,
            "We walked the coastal path last summer too; the view from the lighthouse is worth the climb.",
            author_name="Marie",
            author_email="marie@example.org",
            score=0.41,
            reasons=["unsure: spam probability 41% is between the approve and spam thresholds", "word 'summer'"],
            minutes_ago=60,
        ),
        add_comment(
            server.sessions,
            site_id,
            'Cheap flights <a href="http://cheap-flights.example/deal?ref=spam">best deals here</a> book now',
            author_name="travel deals",
            score=0.66,
            reasons=["the content contains 'cheap' from the block list", "link text differs from its target"],
            minutes_ago=30,
        ),
        add_comment(
            server.sessions,
            site_id,
            "Thanks for the detailed itinerary, saved it for our trip in May.",
            author_name="Jonas",
            score=0.37,
            reasons=["submitted 2 seconds after the form was shown"],
            minutes_ago=10,
        ),
    ]
    return site_id, ids


def test_login_and_work_the_queue_by_mouse(live_server, page, artifacts):
    """Log in, approve one comment and mark another as spam by clicking, undo the last action."""
    add_user(live_server.sessions)
    _, ids = _seed_queue(live_server)
    page.goto(live_server.url + "/review/")
    assert "/review/login" in page.url
    page.screenshot(path=str(artifacts / "login.png"))
    _login(page, live_server)
    cards = page.locator("li.card")
    assert cards.count() == 4
    assert page.locator(f"#c-{ids[0]} mark").first.inner_text().lower().startswith("check out my channel")
    page.screenshot(path=str(artifacts / "queue.png"), full_page=True)

    page.locator(f"#c-{ids[1]}").get_by_role("button", name="Approve").click()
    page.get_by_text("Approved 1 comment.").wait_for()
    assert _status(live_server, ids[1]) == "approve"
    # The page comes back focused on the comment after the one just decided, not at the top.
    page.wait_for_function(f"document.activeElement && document.activeElement.id === 'c-{ids[2]}'")
    page.locator(f"#c-{ids[2]}").get_by_role("button", name="Spam").click()
    page.get_by_text("Marked as spam 1 comment.").wait_for()
    assert _status(live_server, ids[2]) == "spam"
    assert page.locator("li.card").count() == 2

    page.get_by_role("button", name="Undo").click()
    page.get_by_text("Undone: 1 comment back where they were.").wait_for()
    assert _status(live_server, ids[2]) == "hold"
    assert page.locator("li.card").count() == 3
    assert page.watch.dialogs == [] and page.watch.errors == []


def test_work_the_queue_by_keyboard(live_server, page):
    """j/k move between comments, a approves, s marks spam, x selects, u undoes; focus follows."""
    add_user(live_server.sessions)
    _, ids = _seed_queue(live_server)
    _login(page, live_server)
    page.keyboard.press("j")  # the first card is current on load; j moves to the second
    assert page.evaluate("document.activeElement.id") == f"c-{ids[1]}"
    page.keyboard.press("k")
    assert page.evaluate("document.activeElement.id") == f"c-{ids[0]}"
    page.keyboard.press("j")
    with page.expect_navigation():
        page.keyboard.press("a")
    assert _status(live_server, ids[1]) == "approve"
    # After the reload the next comment in line has the focus, so "s" acts on it.
    page.wait_for_function(f"document.activeElement && document.activeElement.id === 'c-{ids[2]}'")
    with page.expect_navigation():
        page.keyboard.press("s")
    assert _status(live_server, ids[2]) == "spam"
    with page.expect_navigation():
        page.keyboard.press("u")
    assert _status(live_server, ids[2]) == "hold"
    page.keyboard.press("j")
    page.keyboard.press("x")
    assert page.locator("input.select:checked").count() == 1
    # Typing in the search box must not trigger shortcuts.
    page.get_by_label("Search").fill("jas")
    assert _status(live_server, ids[0]) == "hold"
    assert page.watch.dialogs == [] and page.watch.errors == []


def test_bulk_actions(live_server, page):
    """Select several comments and mark them as spam at once; select all and approve the rest."""
    add_user(live_server.sessions)
    _, ids = _seed_queue(live_server)
    _login(page, live_server)
    page.get_by_label(f"Select comment {ids[0]}").check()
    page.get_by_label(f"Select comment {ids[2]}").check()
    page.get_by_role("button", name="Spam selected").click()
    page.get_by_text("Marked as spam 2 comments.").wait_for()
    assert [_status(live_server, i) for i in ids] == ["spam", "hold", "spam", "hold"]
    page.get_by_label("Select all on this page").check()
    page.get_by_role("button", name="Approve selected").click()
    page.get_by_text("Approved 2 comments.").wait_for()
    assert [_status(live_server, i) for i in ids] == ["spam", "approve", "spam", "approve"]
    assert page.get_by_text("Nothing waits for review.").is_visible()


def test_rescue_a_false_positive_from_search(live_server, page, artifacts):
    """A discarded legitimate comment is found by search, approved, and the label records who did it."""
    add_user(live_server.sessions)
    site_id, _ = _seed_queue(live_server)
    add_comment(live_server.sessions, site_id, "Buy cheap pills online", decision="spam", score=0.97)
    victim = add_comment(
        live_server.sessions,
        site_id,
        "My grandmother's recipe uses less sugar, I can send it if you like.",
        author_name="Ana",
        decision="discard",
        score=0.99,
        reasons=["word 'send'", "classifier: 99% spam probability"],
    )
    _login(page, live_server)
    page.get_by_role("link", name="Search").click()
    page.get_by_label("Text, author, email, IP or #id").fill("recipe")
    page.get_by_role("button", name="Search").click()
    row = page.locator(f"#c-{victim}")
    assert "discard" in row.inner_text()
    page.get_by_role("button", name=f"Approve comment {victim}").click()
    page.get_by_text("Approved 1 comment.").wait_for()
    assert _status(live_server, victim) == "approve"
    with live_server.sessions() as session:
        label = session.query(LabelRecord).filter_by(comment_id=victim).one()
        assert (label.label, label.source, label.actor) == ("ham", "moderator", "alice")
    page.goto(live_server.url + "/review/search")
    page.screenshot(path=str(artifacts / "search.png"), full_page=True)
    page.goto(live_server.url + f"/review/comments/{victim}")
    assert page.get_by_role("cell", name="hold → approve").count() == 0  # it went discard → approve
    assert page.get_by_role("cell", name="discard → approve").is_visible()


def test_hostile_comment_stays_inert(live_server, page, artifacts):
    """Script, event-handler and iframe payloads in text and author name show as text and never run."""
    add_user(live_server.sessions)
    site_id, _ = add_site(live_server.sessions)
    cid = add_comment(
        live_server.sessions,
        site_id,
        XSS_CONTENT,
        author_name=XSS_AUTHOR,
        author_url="javascript:alert('url')",
        reasons=["word 'nice'", "the author name contains '<script>' from the block list"],
    )
    _login(page, live_server)
    for path in ("/review/", f"/review/comments/{cid}", "/review/search?q=nice"):
        page.goto(live_server.url + path)
        page.wait_for_timeout(300)  # give any injected handler the chance to fire
        assert page.evaluate("window.__xss") is None
        injected = page.locator(
            ".content script, .content img, .content iframe, .content svg, .content a, .content b, "
            ".author-name img, .author-name script"
        )
        assert injected.count() == 0, path
    assert "<script>window.__xss = 1" in page.locator(".content").first.inner_text()
    page.goto(live_server.url + f"/review/comments/{cid}")
    assert page.locator(".author-name").inner_text().startswith("<img src=x onerror=")
    assert page.locator("a[href^='javascript:']").count() == 0
    page.screenshot(path=str(artifacts / "item-hostile.png"), full_page=True)
    assert page.watch.dialogs == []


def test_forged_cross_origin_post_is_refused(live_server, page):
    """A page on another origin auto-submitting a form to the review UI gets 400 and changes nothing."""
    add_user(live_server.sessions)
    _, ids = _seed_queue(live_server)
    _login(page, live_server)
    target = f"{live_server.url}/review/comments/{ids[0]}/decide"
    attack = (
        f'<!doctype html><form id="f" method="post" action="{target}">'
        '<input name="action" value="approve"></form><script>document.getElementById("f").submit()</script>'
    ).encode()

    class Evil(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(attack)))
            self.end_headers()
            self.wfile.write(attack)

        def log_message(self, *args):
            pass

    evil = ThreadingHTTPServer(("127.0.0.1", 0), Evil)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    try:
        with page.expect_response(target) as response_info:
            page.goto(f"http://127.0.0.1:{evil.server_address[1]}/")
        assert response_info.value.status == 400
    finally:
        evil.shutdown()
        evil.server_close()
    assert _status(live_server, ids[0]) == "hold"
    with live_server.sessions() as session:
        assert session.query(LabelRecord).count() == 0


def test_callback_reaches_a_real_receiver_signed(live_server, page, artifacts):
    """Approving in the browser makes the server POST a correctly signed callback to the site's URL."""
    receiver = Receiver().start()
    try:
        add_user(live_server.sessions)
        site_id, _ = add_site(live_server.sessions, "Shop", callback_url=receiver.url, secret="shop-callback-secret")
        cid = add_comment(live_server.sessions, site_id, "Is this lamp available in blue?", author_name="Kim")
        _login(page, live_server)
        page.locator(f"#c-{cid}").get_by_role("button", name="Approve").click()
        page.get_by_text("Approved 1 comment.").wait_for()
        assert receiver.arrived.wait(10), "no callback arrived"
        [got] = receiver.requests
        assert webhooks.verify_signature(
            "shop-callback-secret",
            got.headers["x-moderation-timestamp"],
            got.headers["x-moderation-signature"],
            got.body,
        )
        assert b'"status":"approve"' in got.body and f'"comment_id":{cid}'.encode() in got.body
        page.goto(live_server.url + "/review/deliveries")
        page.get_by_role("cell", name="delivered").first.wait_for()
        with live_server.sessions() as session:
            assert session.query(WebhookDelivery).one().status == "delivered"
        page.screenshot(path=str(artifacts / "deliveries.png"), full_page=True)
    finally:
        receiver.stop()


def _seed_history(server, site_id: int) -> None:
    """Two weeks of decisions, moderator labels and two model versions, for the stats page."""
    now = datetime.now(UTC)
    with server.sessions() as session:
        session.add(
            ModelVersion(version="2026-11-14-a", sha256="0" * 64, status="retired", created_at=now - timedelta(days=14))
        )
        session.add(
            ModelVersion(version="2026-11-21-b", sha256="1" * 64, status="champion", created_at=now - timedelta(days=7))
        )
        session.commit()
    pattern = ["approve"] * 6 + ["hold"] * 2 + ["spam"] * 3 + ["discard"]
    for day in range(14):
        for n, decision in enumerate(pattern[: 6 + (day * 5) % 7]):
            version = "2026-11-14-a" if day > 6 else "2026-11-21-b"
            cid = add_comment(
                server.sessions,
                site_id,
                f"history {day}-{n}",
                decision=decision,
                status=decision,
                score={"approve": 0.1, "hold": 0.5, "spam": 0.9, "discard": 0.99}[decision],
                minutes_ago=day * 1440 + n * 7 + 30,
            )
            with server.sessions() as session:
                comment = session.get(CommentRecord, cid)
                comment.model_version = version
                if decision in ("hold", "discard") or (decision == "approve" and n == day % 6):
                    label = "spam" if decision != "discard" and n % 2 else "ham"
                    comment.status = "spam" if label == "spam" else "approve"
                    session.add(
                        LabelRecord(
                            comment_id=cid,
                            label=label,
                            source="moderator",
                            actor="alice",
                            created_at=now - timedelta(minutes=day * 1440 + 10),
                        )
                    )
                session.commit()


def test_screenshots_of_admin_pages_and_phone_queue(live_server, page, browser, artifacts):
    """Sites, site settings, stats, item and a phone-sized queue render without script errors."""
    add_user(live_server.sessions)
    site_id, ids = _seed_queue(live_server)
    add_site(live_server.sessions, "Cooking forum", callback_url="https://forum.example/hooks/moderation")
    _seed_history(live_server, site_id)
    _login(page, live_server)
    page.goto(live_server.url + "/review/sites")
    page.get_by_label("Name").fill("Photo club")
    page.get_by_role("button", name="Create site and key").click()
    assert len(page.locator("#new-key").inner_text()) == 12
    page.screenshot(path=str(artifacts / "sites.png"), full_page=True)
    page.goto(live_server.url + f"/review/sites/{site_id}")
    page.get_by_label("Hold from").fill("0.4")
    page.get_by_label("Block list (at least spam)").fill("casino\nbit.ly\ncheap-flights.example")
    page.get_by_role("button", name="Save settings").click()
    page.get_by_text("Saved the settings").wait_for()
    page.screenshot(path=str(artifacts / "site-settings.png"), full_page=True)
    page.goto(live_server.url + "/review/stats?days=30")
    assert page.locator("svg.chart").count() == 5
    page.screenshot(path=str(artifacts / "stats.png"), full_page=True)
    page.goto(live_server.url + f"/review/comments/{ids[0]}")
    page.screenshot(path=str(artifacts / "item.png"), full_page=True)
    assert page.watch.errors == [] and page.watch.dialogs == []

    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    try:
        mobile = phone.new_page()
        _login(mobile, live_server)
        mobile.goto(live_server.url + "/review/?sort=riskiest")
        width = mobile.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the queue scrolls sideways on a phone ({width}px wide)"
        mobile.screenshot(path=str(artifacts / "queue-phone.png"))
        mobile.locator("li.card").first.scroll_into_view_if_needed()
        mobile.screenshot(path=str(artifacts / "queue-phone-item.png"))
    finally:
        phone.close()


# Run in the page through the DevTools protocol (not subject to the page's CSP): every form control has
# a label, every button a name, and text colours keep a WCAG AA contrast ratio against their background.
A11Y_AUDIT = """() => {
  const problems = [];
  const named = (el) => (el.labels && el.labels.length) || el.getAttribute('aria-label') || el.closest('label');
  document.querySelectorAll('input:not([type=hidden]), select, textarea').forEach((el) => {
    if (!named(el)) problems.push('unlabelled ' + el.outerHTML.slice(0, 80));
  });
  document.querySelectorAll('button, a').forEach((el) => {
    if (!el.textContent.trim() && !el.getAttribute('aria-label')) {
      problems.push('unnamed ' + el.outerHTML.slice(0, 80));
    }
  });
  const rgb = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    for (let node = el; node; node = node.parentElement) {
      const c = rgb(getComputedStyle(node).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0.9)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const seen = new Set();
  while (walker.nextNode()) {
    const el = walker.currentNode.parentElement;
    if (!el || seen.has(el) || !walker.currentNode.textContent.trim()) continue;
    seen.add(el);
    if (el.closest('svg, .visually-hidden, .skip') || !el.offsetParent) continue;
    const style = getComputedStyle(el);
    const fg = lum(rgb(style.color).slice(0, 3)), bg = lum(background(el));
    const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
    const large = parseFloat(style.fontSize) >= 24 || (parseFloat(style.fontSize) >= 18.6 && style.fontWeight >= 700);
    if (ratio < (large ? 3 : 4.5)) {
      problems.push('contrast ' + ratio.toFixed(2) + ' ' + el.tagName + ' ' + el.textContent.trim().slice(0, 30));
    }
  }
  return problems;
}"""


def test_basic_accessibility(live_server, page):
    """Labels, button names, contrast, a lang attribute and a sensible tab order on every main page."""
    add_user(live_server.sessions)
    site_id, ids = _seed_queue(live_server)
    page.goto(live_server.url + "/review/login")
    assert page.evaluate(A11Y_AUDIT) == []
    _login(page, live_server)
    pages = [
        "/review/",
        "/review/search?q=a",
        f"/review/comments/{ids[0]}",
        "/review/sites",
        f"/review/sites/{site_id}",
        "/review/stats",
        "/review/deliveries",
    ]
    for path in pages:
        page.goto(live_server.url + path)
        assert page.evaluate("document.documentElement.lang") == "en"
        assert page.evaluate(A11Y_AUDIT) == [], path
    page.goto(live_server.url + "/review/")
    order = []
    for _ in range(4):
        page.keyboard.press("Tab")
        order.append(page.evaluate("document.activeElement.textContent.trim()"))
    assert order == ["Skip to content", "Moderation", "Queue", "Search"]


def test_core_actions_work_without_javascript(live_server, browser):
    """With JavaScript off, login, approve, bulk spam and undo still work (plain form posts)."""
    add_user(live_server.sessions)
    _, ids = _seed_queue(live_server)
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        _login(page, live_server)
        page.locator(f"#c-{ids[0]}").get_by_role("button", name="Approve").click()
        page.get_by_text("Approved 1 comment.").wait_for()
        page.get_by_label(f"Select comment {ids[1]}").check()
        page.get_by_label(f"Select comment {ids[2]}").check()
        page.get_by_role("button", name="Spam selected").click()
        page.get_by_text("Marked as spam 2 comments.").wait_for()
        page.get_by_role("button", name="Undo").click()
        page.get_by_text("Undone: 2 comments back where they were.").wait_for()
        assert [_status(live_server, i) for i in ids] == ["approve", "hold", "hold", "hold"]
    finally:
        context.close()


def test_a_long_unbroken_callback_error_wraps_inside_the_page(live_server, page, artifacts):
    """A 600-character error without spaces stays inside its column on the deliveries page and the comment page."""
    add_user(live_server.sessions)
    site_id, _ = add_site(live_server.sessions, "Shop", callback_url="https://93.184.215.14/hook")
    comment_id = add_comment(live_server.sessions, site_id, "a held comment")
    with live_server.sessions() as session:
        session.add(WebhookDelivery(site_id=site_id, comment_id=comment_id, url="https://93.184.215.14/hook",
                                    payload={"status": "spam"}, status="failed", attempts=10,
                                    last_error="ConnectError:" + "x" * 600))  # fmt: skip
        session.commit()
    _login(page, live_server)
    for path in ("/review/deliveries", f"/review/comments/{comment_id}"):
        page.goto(live_server.url + path)
        overflow = page.evaluate(
            "() => [...document.querySelectorAll('.table-wrap')].map(w => w.scrollWidth - w.clientWidth)"
        )
        assert overflow and max(overflow) <= 1, (path, overflow)
        assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth"), path
    page.screenshot(path=str(artifacts / "item-long-callback-error.png"), full_page=True)
