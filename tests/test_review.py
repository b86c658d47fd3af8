"""The review UI through Flask's test client on a real database: login, CSRF, queue, actions, undo, sites, stats."""

import re
from html.parser import HTMLParser

import pytest
from review_helpers import PASSWORD, add_comment, add_site, add_user, csrf_from, login

from moderation.store.schema import AuditEvent, CommentRecord, LabelRecord, Site, WebhookDelivery


@pytest.fixture
def sessions(app):
    """The app's sessionmaker."""
    return app.extensions["moderation"].sessions


@pytest.fixture
def admin(client, sessions):
    """A logged-in admin client."""
    add_user(sessions, "alice", "admin")
    assert login(client).status_code == 302
    return client


def _token(client, url="/review/"):
    return csrf_from(client.get(url).get_data(as_text=True))


def test_pages_need_login(client):
    """Every page sends an anonymous visitor to the login form, remembering where they were going."""
    for url in ("/review/", "/review/search", "/review/stats", "/review/sites", "/review/deliveries"):
        response = client.get(url)
        assert response.status_code == 302 and "/review/login?next=" in response.headers["Location"]


def test_wrong_password_is_refused(client, sessions):
    """A wrong password answers 401 with the login form again and no session."""
    add_user(sessions)
    response = login(client, password="wrong password!")
    assert response.status_code == 401
    assert "unknown user name or wrong password" in response.get_data(as_text=True)
    assert client.get("/review/").status_code == 302


def test_lockout_shows_429(client, sessions):
    """After five failures even the right password is refused for a while."""
    add_user(sessions)
    for _ in range(5):
        login(client, password="wrong password!")
    assert login(client).status_code == 429


def test_session_cookie_flags(client, sessions):
    """The session cookie is HttpOnly and SameSite=Lax."""
    add_user(sessions)
    response = login(client)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_secure_cookie_in_production(db_url, tmp_path):
    """With MODERATION_ENV=production the session cookie is marked Secure."""
    from moderation.web.app import create_app

    app = create_app({"ENV": "production", "SECRET_KEY": "x" * 40, "DATABASE_URL": db_url, "MODEL_DIR": str(tmp_path)})
    try:
        assert app.config["SESSION_COOKIE_SECURE"] is True
    finally:
        app.extensions["moderation"].engine.dispose()


def test_login_without_csrf_token_is_refused(client, sessions):
    """A login form posted without its CSRF token gets 400, even with the right password."""
    add_user(sessions)
    response = client.post("/review/login", data={"username": "alice", "password": PASSWORD})
    assert response.status_code == 400


def test_forged_action_is_refused(admin, sessions):
    """A logged-in moderator's browser posting an action without the token changes nothing."""
    site_id, _ = add_site(sessions)
    cid = add_comment(sessions, site_id, "held comment")
    response = admin.post(f"/review/comments/{cid}/decide", data={"action": "approve"})
    assert response.status_code == 400
    with sessions() as session:
        assert session.get(CommentRecord, cid).status == "hold"


def test_api_stays_csrf_exempt(client, site_key):
    """The key-authenticated JSON API needs no CSRF token."""
    response = client.post(
        "/api/v1/comments/check", json={"content": "hello there"}, headers={"Authorization": f"Bearer {site_key}"}
    )
    assert response.status_code == 200, response.get_data(as_text=True)


def test_security_headers(admin):
    """Pages carry a strict CSP without inline scripts, no-referrer and no caching."""
    response = admin.get("/review/")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "default-src 'none'" in csp
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Cache-Control"] == "no-store"
    assert "<script>" not in response.get_data(as_text=True)  # no inline script blocks


def test_queue_lists_held_oldest_or_riskiest_first(admin, sessions):
    """The queue shows only held comments, oldest first by default, riskiest first on request."""
    site_id, _ = add_site(sessions)
    old = add_comment(sessions, site_id, "old and mild", score=0.4, minutes_ago=60)
    risky = add_comment(sessions, site_id, "new and risky", score=0.8, minutes_ago=1)
    add_comment(sessions, site_id, "already approved", decision="approve", score=0.1)
    html = admin.get("/review/").get_data(as_text=True)
    ids = [int(i) for i in re.findall(r'<li class="card[^"]*" id="c-(\d+)"', html)]
    assert ids == [old, risky]
    html = admin.get("/review/?sort=riskiest").get_data(as_text=True)
    assert [int(i) for i in re.findall(r'<li class="card[^"]*" id="c-(\d+)"', html)] == [risky, old]


def test_queue_filters(admin, sessions):
    """Site, search text and dates narrow the queue."""
    blog, _ = add_site(sessions, "Blog")
    shop, _ = add_site(sessions, "Shop")
    a = add_comment(sessions, blog, "cheap watches here")
    b = add_comment(sessions, shop, "lovely article", author_name="Marie")
    html = admin.get(f"/review/?site={shop}").get_data(as_text=True)
    assert f'id="c-{b}"' in html and f'id="c-{a}"' not in html
    html = admin.get("/review/?q=WATCHES").get_data(as_text=True)
    assert f'id="c-{a}"' in html and f'id="c-{b}"' not in html
    html = admin.get("/review/?q=marie").get_data(as_text=True)
    assert f'id="c-{b}"' in html
    assert "Nothing waits" in admin.get("/review/?since=2999-01-01").get_data(as_text=True)


def test_item_is_inert_and_highlighted(admin, sessions):
    """Hostile HTML is escaped; trigger words are wrapped in <mark>; links are text with their domain."""
    site_id, _ = add_site(sessions)
    cid = add_comment(
        sessions,
        site_id,
        'Buy <b>cheap</b> pills <script>alert(1)</script> <a href="http://pills.example/x">here</a>',
        author_name='<img src=x onerror="alert(2)">',
        reasons=["word 'cheap'", "the content contains 'pills' from the block list"],
    )
    html = admin.get(f"/review/comments/{cid}").get_data(as_text=True)
    assert "<script>alert" not in html and "<img src=x" not in html and "<b>cheap" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<mark>cheap</mark>" in html and "<mark>pills</mark>" in html
    assert '<bdi class="host">pills.example</bdi>' in html
    assert 'href="http://pills.example/x" rel="noopener noreferrer nofollow"' in html  # only inside "open a link"


def test_approve_labels_audits_and_undo_reverts(admin, sessions):
    """Approving stores a moderator ham label with an audit event; undo removes the label and restores hold."""
    site_id, _ = add_site(sessions)
    cid = add_comment(sessions, site_id, "a held comment")
    token = _token(admin)
    response = admin.post(f"/review/comments/{cid}/decide", data={"action": "approve", "csrf_token": token})
    assert response.status_code == 302
    with sessions() as session:
        comment = session.get(CommentRecord, cid)
        assert comment.status == "approve"
        [label] = session.query(LabelRecord).all()
        assert (label.label, label.source, label.actor) == ("ham", "moderator", "alice")
        event = session.query(AuditEvent).filter_by(comment_id=cid, action="comment.label").one()
        assert event.detail["from"] == "hold" and event.detail["to"] == "approve"
    page = admin.get("/review/").get_data(as_text=True)
    assert "Approved 1 comment." in page and 'id="undo-button"' in page
    assert admin.post("/review/undo", data={"csrf_token": token}).status_code == 302
    with sessions() as session:
        assert session.get(CommentRecord, cid).status == "hold"
        assert session.query(LabelRecord).count() == 0
        assert session.query(AuditEvent).filter_by(comment_id=cid, action="comment.undo").count() == 1


def test_bulk_spam_and_delete(admin, sessions):
    """Bulk actions apply to every selected comment and nothing else."""
    site_id, _ = add_site(sessions)
    ids = [add_comment(sessions, site_id, f"comment {i}") for i in range(4)]
    token = _token(admin)
    admin.post("/review/bulk", data={"action": "spam", "ids": [str(i) for i in ids[:2]], "csrf_token": token})
    admin.post("/review/bulk", data={"action": "delete", "ids": [str(ids[2])], "csrf_token": token})
    with sessions() as session:
        statuses = [session.get(CommentRecord, i).status for i in ids]
        assert statuses == ["spam", "spam", "deleted", "hold"]
        assert session.query(LabelRecord).filter_by(label="spam").count() == 2


def test_search_finds_and_corrects_any_comment(admin, sessions):
    """An automatically discarded comment is found by search and rescued as ham."""
    site_id, _ = add_site(sessions)
    cid = add_comment(sessions, site_id, "my honest comment about the recipe", decision="discard", score=0.99)
    html = admin.get("/review/search?q=recipe").get_data(as_text=True)
    assert f'id="c-{cid}"' in html
    admin.post(f"/review/comments/{cid}/decide", data={"action": "approve", "csrf_token": csrf_from(html)})
    with sessions() as session:
        assert session.get(CommentRecord, cid).status == "approve"


def test_decision_queues_signed_callback(admin, sessions):
    """A decision on a site with a callback URL queues a delivery, shown in the callback log."""
    site_id, _ = add_site(sessions, callback_url="http://127.0.0.1:9/cb")
    cid = add_comment(sessions, site_id, "held")
    admin.post(f"/review/comments/{cid}/decide", data={"action": "spam", "csrf_token": _token(admin)})
    with sessions() as session:
        delivery = session.query(WebhookDelivery).one()
        assert delivery.payload["status"] == "spam" and delivery.payload["comment_id"] == cid
    assert f"#{cid}" in admin.get("/review/deliveries").get_data(as_text=True)


def test_moderator_cannot_manage_sites(client, sessions):
    """Site management is for admins only."""
    add_user(sessions, "bob", "moderator")
    login(client, "bob")
    assert client.get("/review/sites").status_code == 403


def test_admin_creates_site_and_sees_key_once(admin, sessions):
    """Creating a site shows its key once; only the hash is stored."""
    html = admin.post("/review/sites", data={"name": "New blog", "csrf_token": _token(admin, "/review/sites")})
    key = re.search(r'<code class="key" id="new-key">([a-z0-9]{12})</code>', html.get_data(as_text=True)).group(1)
    with sessions() as session:
        from moderation.store.sites import site_for_key

        assert site_for_key(session, key).name == "New blog"
    assert key not in admin.get("/review/sites").get_data(as_text=True)


def test_admin_edits_site_settings_in_policy_shape(admin, sessions):
    """Thresholds, lists and callback URL are saved in the shape policy.SiteSettings reads."""
    from moderation.policy.decision import SiteSettings

    site_id, _ = add_site(sessions)
    token = _token(admin, f"/review/sites/{site_id}")
    form = {
        "csrf_token": token,
        "hold": "0.3",
        "spam": "0.8",
        "discard": "",
        "max_links": "3",
        "min_seconds_to_submit": "2.5",
        "honeypot": "on",
        "blocklist": "casino\nbit.ly\n\n",
        "allowlist": "friend@example.org",
        "callback_url": "https://93.184.215.14/cb",  # public, and resolved without a network
    }
    assert admin.post(f"/review/sites/{site_id}", data=form).status_code == 302
    with sessions() as session:
        site = session.get(Site, site_id)
        policy = SiteSettings.from_dict(site.settings)
        assert (policy.hold, policy.spam, policy.discard) == (0.3, 0.8, None)
        assert policy.blocklist == ("casino", "bit.ly") and policy.allowlist == ("friend@example.org",)
        assert policy.max_links == 3 and policy.min_seconds_to_submit == 2.5
        assert site.callback_url == "https://93.184.215.14/cb" and len(site.callback_secret) == 64
    bad = dict(form, hold="0.9", spam="0.2", callback_url="ftp://x")
    response = admin.post(f"/review/sites/{site_id}", data=bad)
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    assert "callback URL: expected an http" in text


@pytest.mark.parametrize(
    "url",
    ["http://169.254.169.254/latest/meta-data/", "http://[::1]/", "http://0.0.0.0:8080/", "http://2130706433/",
     "http://127.1/", "http://localhost/", "https://user:secret@93.184.215.14/cb"],
)  # fmt: skip
def test_admin_cannot_save_a_callback_url_inside_the_network(admin, sessions, url):
    """Internal addresses in any spelling, names resolving inside, and URLs with credentials are refused on save."""
    site_id, _ = add_site(sessions)
    form = {"csrf_token": _token(admin, f"/review/sites/{site_id}"), "callback_url": url, "max_links": "2"}
    response = admin.post(f"/review/sites/{site_id}", data=form)
    assert response.status_code == 400 and "Nothing was saved" in response.get_data(as_text=True)
    with sessions() as session:
        assert session.get(Site, site_id).callback_url == ""


def test_callback_allow_private_lets_an_admin_save_a_local_url(db_url, tmp_path):
    """With MODERATION_CALLBACK_ALLOW_PRIVATE (local development) a loopback callback URL is saved."""
    from moderation.web.app import create_app

    app = create_app(
        {"CALLBACK_ALLOW_PRIVATE": True, "DATABASE_URL": db_url, "MODEL_DIR": str(tmp_path), "TESTING": True}
    )
    try:
        sessions = app.extensions["moderation"].sessions
        add_user(sessions)
        site_id, _ = add_site(sessions)
        client = app.test_client()
        login(client)
        form = {"csrf_token": _token(client, f"/review/sites/{site_id}"), "callback_url": "http://127.0.0.1:9000/cb"}
        assert client.post(f"/review/sites/{site_id}", data=form).status_code == 302
        with sessions() as session:
            assert session.get(Site, site_id).callback_url == "http://127.0.0.1:9000/cb"
    finally:
        app.extensions["moderation"].engine.dispose()


def test_stats_page_draws_svg_charts(admin, sessions):
    """The stats page renders inline SVG charts with the day's figures."""
    site_id, _ = add_site(sessions)
    add_comment(sessions, site_id, "spam", decision="spam", score=0.9)
    cid = add_comment(sessions, site_id, "wrongly discarded", decision="discard", score=0.99)
    add_comment(sessions, site_id, "fine", decision="approve", score=0.1)
    admin.post(f"/review/comments/{cid}/decide", data={"action": "approve", "csrf_token": _token(admin)})
    html = admin.get("/review/stats").get_data(as_text=True)
    assert html.count("<svg") == 5
    assert "67%" in html  # 2 of 3 comments were spam or discard
    assert "overturned the automatic decision (1)" in html


def test_logout_needs_post_and_ends_session(admin):
    """Logging out is a CSRF-protected POST that ends the session."""
    assert admin.get("/review/logout").status_code == 405
    admin.post("/review/logout", data={"csrf_token": _token(admin)})
    assert admin.get("/review/").status_code == 302


def test_logout_ends_every_copy_of_the_session_cookie(app, admin, sessions):
    """A cookie copied before logout opens nothing afterwards and cannot act: the login ended server-side."""
    site_id, _ = add_site(sessions)
    comment_id = add_comment(sessions, site_id, "waiting for a moderator")
    token = _token(admin)
    stolen = admin.get_cookie("session").value
    admin.post("/review/logout", data={"csrf_token": token})
    thief = app.test_client()
    thief.set_cookie("session", stolen)
    assert thief.get("/review/").status_code == 302
    thief.set_cookie("session", stolen)  # the copy, as it was, not the cleared cookie the server sent back
    decided = thief.post(f"/review/comments/{comment_id}/decide", data={"action": "spam", "csrf_token": token})
    assert decided.status_code == 302 and "/review/login" in decided.headers["Location"]
    with sessions() as session:
        assert session.get(CommentRecord, comment_id).status == "hold"


def test_session_lasts_session_hours_in_the_cookie_and_on_the_server(db_url, tmp_path):
    """With MODERATION_SESSION_HOURS=2 the cookie expires in 2 hours (not Flask's 31 days) and so does the login."""
    from datetime import UTC, datetime, timedelta
    from email.utils import parsedate_to_datetime

    from moderation.store.schema import ReviewSession
    from moderation.web.app import create_app

    app = create_app({"SESSION_HOURS": 2, "DATABASE_URL": db_url, "MODEL_DIR": str(tmp_path), "TESTING": True})
    try:
        sessions = app.extensions["moderation"].sessions
        add_user(sessions)
        client = app.test_client()
        response = login(client)
        expires = parsedate_to_datetime(re.search(r"Expires=([^;]+)", response.headers["Set-Cookie"]).group(1))
        assert abs(expires - (datetime.now(UTC) + timedelta(hours=2))) < timedelta(minutes=5)
        assert client.get("/review/").status_code == 200
        with sessions() as session:  # two hours later, as the server sees it
            for row in session.query(ReviewSession):
                row.expires_at = datetime.now(UTC) - timedelta(seconds=1)
            session.commit()
        assert client.get("/review/").status_code == 302
    finally:
        app.extensions["moderation"].engine.dispose()


def test_a_new_password_ends_the_users_sessions(admin, sessions):
    """`moderation users passwd` (set_password) logs the user out everywhere."""
    from moderation.store.users import set_password

    assert admin.get("/review/").status_code == 200
    with sessions() as session:
        set_password(session, "alice", "a brand new password")
    assert admin.get("/review/").status_code == 302


def test_open_redirect_is_refused(client, sessions):
    """A login `next` pointing elsewhere lands on the queue instead."""
    add_user(sessions)
    token = csrf_from(client.get("/review/login").get_data(as_text=True))
    response = client.post(
        "/review/login",
        data={"username": "alice", "password": PASSWORD, "csrf_token": token, "next": "//evil.example/"},
    )
    assert response.headers["Location"] == "/review/"


def test_one_address_cannot_spray_many_accounts(client, sessions, monkeypatch):
    """Failed logins from one address across different accounts are throttled with 429."""
    from moderation.web.review import auth

    monkeypatch.setattr(auth, "IP_FAILURES_ALLOWED", 3)
    add_user(sessions)
    for name in ("a1", "a2", "a3"):
        assert login(client, name, "wrong password!").status_code == 401
    assert login(client).status_code == 429


def test_unknown_comment_is_a_404_page(admin):
    """A missing comment answers 404 with an HTML page in the UI's style."""
    response = admin.get("/review/comments/999999")
    assert response.status_code == 404 and "Not found" in response.get_data(as_text=True)


def test_undo_before_sending_cancels_the_callback(admin, sessions):
    """Undoing a decision whose callback has not gone out yet cancels it instead of telling the site twice."""
    site_id, _ = add_site(sessions, callback_url="http://127.0.0.1:9/cb")
    cid = add_comment(sessions, site_id, "held")
    token = _token(admin)
    admin.post(f"/review/comments/{cid}/decide", data={"action": "spam", "csrf_token": token})
    admin.post("/review/undo", data={"csrf_token": token})
    with sessions() as session:
        [delivery] = session.query(WebhookDelivery).all()
        assert delivery.status == "cancelled" and "undone by alice" in delivery.last_error


def test_comment_checked_through_the_api_waits_in_the_queue(client, sessions, site_key):
    """A comment the JSON API held (no model loaded) appears in the queue with its reason."""
    response = client.post(
        "/api/v1/comments/check",
        json={"content": "First time here, <i>hello</i> everyone", "author_name": "Newbie"},
        headers={"Authorization": f"Bearer {site_key}"},
    )
    assert response.get_json()["decision"] == "hold"
    comment_id = response.get_json()["id"]
    add_user(sessions)
    login(client)
    html = client.get("/review/").get_data(as_text=True)
    assert f'id="c-{comment_id}"' in html
    assert "First time here, &lt;i&gt;hello&lt;/i&gt; everyone" in html
    assert "no model loaded" in html


# --- Right-to-left overrides and other bidi controls stay inside what they came in -------------------------

RLO = "\u202e"


class _IsolationCheck(HTMLParser):
    """Finds text holding `marker` that no <bdi> or dir-carrying element (other than the page's own) isolates."""

    VOID = frozenset(("area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track"))

    def __init__(self, marker: str) -> None:
        super().__init__(convert_charrefs=True)
        self.marker = marker
        self.stack: list[tuple[str, bool]] = []  # (tag, isolates)
        self.unisolated: list[str] = []
        self.seen = 0

    def handle_starttag(self, tag, attrs):
        if tag not in self.VOID:
            isolates = tag == "bdi" or ("dir" in dict(attrs) and tag not in ("html", "body", "main"))
            self.stack.append((tag, isolates))

    def handle_endtag(self, tag):
        while self.stack:
            if self.stack.pop()[0] == tag:
                break

    def handle_data(self, data):
        if self.marker in data:
            self.seen += 1
            inside = [tag for tag, _ in self.stack]
            if inside and inside[-1] == "title":  # the window's title is no line of the page
                return
            if not any(isolates for _, isolates in self.stack):
                self.unisolated.append(f"{'>'.join(inside[-4:])}: {data.strip()[:60]!r}")


def _hostile(tag: str) -> str:
    return f"{RLO}evil-{tag}"


def test_every_user_supplied_string_is_isolated_from_the_text_around_it(app, sessions):
    """A right-to-left override in any commenter-, site- or admin-supplied string (names, email, URLs, content,
    user agent, reasons, audit actors, site names, callback errors) is wrapped in <bdi> or an element with dir=,
    so it cannot reverse the rest of the line, on the queue, search, item, deliveries, sites and site pages."""
    from moderation.store.schema import AuditEvent, WebhookDelivery

    add_user(sessions, _hostile("user"), "admin")
    site_id, _ = add_site(sessions, _hostile("site"), callback_url=f"https://93.184.215.14/{_hostile('callback')}")
    fields = {
        "author_email": _hostile("email"), "author_url": f"http://x.example/{_hostile('url')}",
        "user_ip": "192.0.2.1", "user_agent": _hostile("agent"), "permalink": f"https://b.example/{_hostile('perma')}",
        "referrer": f"https://r.example/{_hostile('ref')}", "comment_type": _hostile("type"),
        "language": _hostile("lang"),
    }  # fmt: skip
    content = f"see <a href='http://l.example/{_hostile('href')}'>{_hostile('anchor')}</a> {_hostile('content')}"
    comment_id = add_comment(
        sessions, site_id, content, author_name=_hostile("author"),
        reasons=[f"word '{_hostile('reason')}'"], **fields,
    )  # fmt: skip
    with sessions() as session:
        session.get(Site, site_id).url = f"https://s.example/{_hostile('siteurl')}"
        session.add(AuditEvent(actor=f"site:{site_id}/{_hostile('reporter')}", action="label", comment_id=comment_id,
                               detail={"label": "spam"}))  # fmt: skip
        session.add(WebhookDelivery(site_id=site_id, comment_id=comment_id, url="https://93.184.215.14/",
                                    payload={"status": "spam"}, status="failed", attempts=10,
                                    last_error=f"ConnectError: {_hostile('error')}"))  # fmt: skip
        session.commit()
    client = app.test_client()
    assert login(client, _hostile("user")).status_code == 302
    pages = ["/review/", f"/review/search?q={RLO}evil", f"/review/comments/{comment_id}", "/review/deliveries",
             "/review/sites", f"/review/sites/{site_id}"]  # fmt: skip
    seen = 0
    for page in pages:
        check = _IsolationCheck("evil-")
        check.feed(client.get(page).get_data(as_text=True))
        assert check.unisolated == [], (page, check.unisolated)
        seen += check.seen
    assert seen > 40  # the strings were on the pages: the check looked at something
