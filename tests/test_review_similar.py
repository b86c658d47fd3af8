"""Near-duplicates in the review UI: marking a campaign's comment as spam offers to mark its other copies, with undo."""

import re

import pytest
from review_helpers import add_comment, add_site, add_user, csrf_from, login

from moderation.core.similar import near_duplicates
from moderation.store.schema import CommentRecord

CAMPAIGN = "Join our Discord server for the weekly meetup"


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


def test_copies_with_changed_counters_links_and_case_are_near_duplicates():
    """Copies of one wording match; a comment on the same topic in other words does not."""
    candidates = [
        (1, "join our discord server for the weekly meetup!!! number 12 http://x.gg/abc"),
        (2, "JOIN OUR DISCORD SERVER for the weekly meetup on friday"),
        (3, "I joined the weekly meetup last week, great server"),
        (4, "Thanks, the second example fixed my build."),
    ]
    assert near_duplicates([f"{CAMPAIGN} number 7"], candidates) == [1, 2]


def test_marking_spam_offers_the_similar_held_and_approved_comments_and_undo(admin, sessions):
    """After one copy is marked spam the page offers "mark all 3 similar as spam" (held and approved copies of the
    same site only); doing so marks them, and undo puts them back."""
    site_id, _ = add_site(sessions)
    other_site, _ = add_site(sessions, "Other")
    first = add_comment(sessions, site_id, f"{CAMPAIGN} number 1 http://discord.gg/a")
    held = [add_comment(sessions, site_id, f"{CAMPAIGN} number {i} http://discord.gg/{i}") for i in (2, 3)]
    published = add_comment(sessions, site_id, f"{CAMPAIGN}!!! number 4", decision="approve")
    already = add_comment(sessions, site_id, f"{CAMPAIGN} number 5", decision="spam")
    elsewhere = add_comment(sessions, other_site, f"{CAMPAIGN} number 6")
    unrelated = add_comment(sessions, site_id, "Thanks, the second example fixed my build.")

    token = csrf_from(admin.get("/review/").get_data(as_text=True))
    admin.post(f"/review/comments/{first}/decide", data={"action": "spam", "csrf_token": token})
    page = admin.get("/review/").get_data(as_text=True)
    assert "3 similar comments are still held or approved." in page
    assert "Mark all 3 similar as spam" in page
    form = page[page.index('id="similar-form"') : page.index("</form>", page.index('id="similar-form"'))]
    offered = {int(i) for i in re.findall(r'name="ids" value="(\d+)"', form)}
    assert offered == {*held, published}

    admin.post("/review/bulk", data={"action": "spam", "ids": [str(i) for i in offered], "csrf_token": token})
    with sessions() as session:
        status = {i: session.get(CommentRecord, i).status for i in (*held, published, already, elsewhere, unrelated)}
    assert status == {held[0]: "spam", held[1]: "spam", published: "spam", already: "spam", elsewhere: "hold",
                      unrelated: "hold"}  # fmt: skip
    page = admin.get("/review/").get_data(as_text=True)
    assert "Marked as spam 3 comments." in page and "similar as spam" not in page

    admin.post("/review/undo", data={"csrf_token": token})
    with sessions() as session:
        assert [session.get(CommentRecord, i).status for i in (*held, published)] == ["hold", "hold", "approve"]
        assert session.get(CommentRecord, first).status == "spam"


def test_approving_offers_nothing(admin, sessions):
    """Only marking spam looks for similar comments."""
    site_id, _ = add_site(sessions)
    first = add_comment(sessions, site_id, f"{CAMPAIGN} number 1")
    add_comment(sessions, site_id, f"{CAMPAIGN} number 2")
    token = csrf_from(admin.get("/review/").get_data(as_text=True))
    admin.post(f"/review/comments/{first}/decide", data={"action": "approve", "csrf_token": token})
    assert "similar" not in admin.get("/review/").get_data(as_text=True)
