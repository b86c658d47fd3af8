"""The filter a new site gets: a first start trains on the shipped data alone, and that model holds obvious
spam while it publishes ordinary comments, risky-looking ones included."""

from __future__ import annotations

import pytest
from filelock import FileLock

from moderation.comment import Comment, Decision
from moderation.core.model_store import load_model
from moderation.store.sites import create_site
from moderation.web.app import create_app
from moderation.web.serving import ensure_model

pytestmark = pytest.mark.slow

# The issue's own examples: approved by the first-start model before it trained on the shipped corpora.
SPAM = [
    "Buy cheap viagra online now http://cheap-pills.top best price!!!",
    "CASINO BONUS 500 FREE SPINS http://casino-win.xyz",
    "Earn $5000 a week working from home, click here http://bit.ly/abc",
]
HAM = [
    "Great write-up, thanks. The part about connection pooling finally made sense to me.",
    "I disagree with the second point: the council voted on the budget in March, not in May.",
    "Has anyone tried this recipe with oat milk instead? Mine came out a bit runny.",
]
# Legitimate comments that look risky to a naive filter: links, prices, code, short replies, channel talk,
# anger. None may ever be blocked; a moderator may be asked about one.
RISKY_HAM = [
    "The full report is here: https://www.ons.gov.uk/ - see table 4, the figures don't match the article.",
    "I paid $49 for the 2TB version last month and it still works fine, though it gets hot.",
    "This fixed it for me: `pip install --upgrade setuptools` then rerun `python -m build`.",
    "+1",
    "😂😂😂",
    "lol same",
    "This channel deserves way more than 12k subscribers, the editing is insane.",
    "Check out his older video on bridges, it explains the maths behind this much better.",
    "This government is a DISGRACE. They promised lower taxes and doubled them. Vote them out!",
    "If you're struggling with gambling, GamCare is free on 0808 8020 133. It helped my brother.",
    "Source? I read the opposite on Wikipedia: https://en.wikipedia.org/wiki/Minimum_wage",
    "Danke für den Artikel! Wir waren letzten Sommer dort und es war genau so schön.",
]


@pytest.fixture(scope="session")
def first_start_models(request, tmp_path_factory):
    """The model folder a first `moderation serve` trains with no data folder (once for all workers of a run)."""
    base = tmp_path_factory.getbasetemp()
    # Under xdist each worker's base folder sits inside the run's own folder, which the workers share.
    shared = (base.parent if hasattr(request.config, "workerinput") else base) / "first-start-models"
    with FileLock(f"{shared}.lock"):
        ensure_model(shared, None, progress=lambda _message: None)
    return shared


@pytest.fixture
def first_start_client(first_start_models, tmp_path):
    """A test client of the app serving the first-start model on a new SQLite database, and a site key."""
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'moderation.sqlite3'}",
            "MODEL_DIR": str(first_start_models),
            "INSTANCE_PATH": str(tmp_path),
        }
    )
    with app.extensions["moderation"].sessions() as session:
        _site, key = create_site(session, "New blog", "https://blog.example")
    yield app.test_client(), key
    app.extensions["moderation"].engine.dispose()


def test_a_first_start_holds_obvious_spam_and_approves_ordinary_comments(first_start_client):
    """Through the API, the issue's three spam comments are held or worse and three ordinary ones approved."""
    client, key = first_start_client
    headers = {"Authorization": f"Bearer {key}"}

    def decision(text: str) -> str:
        # One address per commenter: six comments from one address in a minute would be a flood.
        body = {"content": text, "user_ip": f"203.0.113.{len(text) % 250 + 1}"}
        answer = client.post("/api/v1/comments/check", json=body, headers=headers)
        assert answer.status_code == 200, answer.get_json()
        return str(answer.get_json()["decision"])

    spam = {text: decision(text) for text in SPAM}
    assert all(d in ("hold", "spam", "discard") for d in spam.values()), spam
    ham = {text: decision(text) for text in HAM}
    assert all(d == "approve" for d in ham.values()), ham


def test_the_first_start_model_never_blocks_risky_looking_ham(first_start_models):
    """Every risky-looking legitimate comment is approved or held for a moderator, never spam or discard."""
    model = load_model(first_start_models)
    verdicts = {text: model.thresholds.decide(model.score(Comment(content=text)).probability) for text in RISKY_HAM}
    blocked = {text: str(d) for text, d in verdicts.items() if d in (Decision.SPAM, Decision.DISCARD)}
    assert blocked == {}
