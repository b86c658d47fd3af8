"""Learning without cron: a running service refits a site's own model soon after its labels, once, under the lock."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from learning_helpers import domain, new_site, save_and_register, starter_model, store_labelled

from benchmarks.live_server import serve, service_env
from moderation.comment import Comment, Label
from moderation.core.model_store import load_model
from moderation.learning.retrain import RetrainOptions, retrain_lock
from moderation.learning.site_learning import MARKS_KEY, site_labels
from moderation.learning.site_refit import RefitPolicy, due_sites, refit_due_sites
from moderation.store import db, registry
from moderation.store.sites import create_site
from moderation.web.serving import wsgi_app

CAMPAIGN = "join our discord server for the weekly meetup"
PROBE = Comment(f"{CAMPAIGN} on friday", author_name="Kim")


def _campaign(n: int, seed: int) -> list:
    """A site's labels: `n` comments of a campaign its moderators call spam, and `n` ordinary ones."""
    spam = [(f"{CAMPAIGN} number {seed}-{i}", Label.SPAM) for i in range(n)]
    return spam + [(e.comment.content, e.label) for e in domain(0, n, seed=seed)]


def _marks(session) -> dict:
    return registry.champion(session).manifest["data"].get(MARKS_KEY)


def test_a_site_is_due_by_count_or_by_age_of_its_oldest_new_label(champion_store):
    """Few young labels wait; enough labels, or an old enough one, make the site due; other sites are left alone."""
    _engine, session, _folder = champion_store
    site, quiet = new_site(session), new_site(session, "quiet")
    store_labelled(session, quiet, domain(10, 10, seed=1))
    marks = {"through": 10**9, "counts": {str(quiet.id): 20}}
    store_labelled(session, site, domain(6, 6))
    found = site_labels(session, marks["through"])
    now = datetime.now(UTC)
    policy = RefitPolicy(labels=20, seconds=60)
    assert due_sites(found, marks, policy, min_labels=10, now=now) == [site.id]  # no newer id than the mark: at once
    marks["through"] = 0
    found = site_labels(session, 0)
    assert due_sites(found, marks, policy, min_labels=10, now=now) == []  # 12 new labels, seconds old
    assert due_sites(found, marks, policy, min_labels=13, now=now + timedelta(minutes=5)) == []  # too few to fit
    assert due_sites(found, marks, policy, min_labels=10, now=now + timedelta(seconds=61)) == [site.id]
    assert due_sites(found, marks, RefitPolicy(labels=12), min_labels=10, now=now) == [site.id]


def test_refit_publishes_the_due_sites_once_and_keeps_the_others(champion_store):
    """A due site gets its model in a new champion; a second pass finds nothing due; other sites' models stay."""
    engine, session, folder = champion_store
    early, late, one_sided = new_site(session, "early"), new_site(session, "late"), new_site(session, "one-sided")
    store_labelled(session, early, domain(15, 15, seed=2))
    options, policy = RetrainOptions(), RefitPolicy(labels=5, seconds=60)
    first = refit_due_sites(engine, folder, options, policy)
    assert first is not None and first.promoted and first.sites == [early.id]
    early_model = load_model(folder, first.challenger).sites[early.id]
    assert refit_due_sites(engine, folder, options, policy) is None

    store_labelled(session, late, _campaign(15, seed=3))
    store_labelled(session, one_sided, [(f"hello friend {i}", Label.SPAM) for i in range(30)])
    unchanged: dict[int, int] = {}
    second = refit_due_sites(engine, folder, options, policy, unchanged=unchanged)
    assert second is not None and second.promoted and second.sites == [late.id, one_sided.id]
    served = load_model(folder, registry.champion(session).version)
    assert served.version == second.challenger and set(served.sites) == {early.id, late.id}
    assert served.sites[early.id] is not None and served.sites[early.id].n_labels == early_model.n_labels
    assert served.score_for_site(PROBE, late.id).probability > served.predict_proba([PROBE])[0] + 0.2
    assert _marks(session)["counts"][str(late.id)] == 30
    assert refit_due_sites(engine, folder, options, policy, unchanged=unchanged) is None

    store_labelled(session, one_sided, [(f"hello again {i}", Label.SPAM) for i in range(10)])
    nothing = refit_due_sites(engine, folder, options, policy, unchanged=unchanged)
    assert nothing is not None and not nothing.promoted and "nothing published" in nothing.reason
    assert unchanged == {one_sided.id: 40}
    assert registry.champion(session).version == second.challenger
    assert refit_due_sites(engine, folder, options, policy, unchanged=unchanged) is None


def test_a_refit_waits_for_nobody_while_a_retrain_holds_the_lock(champion_store):
    """While another process holds the retrain lock a refit pass returns at once, and refits after it is released."""
    engine, session, folder = champion_store
    store_labelled(session, new_site(session), domain(15, 15, seed=4))
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with retrain_lock(engine, 5, folder):
            held.set()
            release.wait(30)

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait(5)
    try:
        started = time.monotonic()
        assert refit_due_sites(engine, folder, RetrainOptions(), RefitPolicy(labels=5)) is None
        assert time.monotonic() - started < 5
    finally:
        release.set()
        thread.join()
    assert refit_due_sites(engine, folder, RetrainOptions(), RefitPolicy(labels=5)) is not None


@pytest.mark.slow
def test_a_label_through_the_api_changes_the_sites_scores_with_no_command_run(tmp_path, db_url):
    """Against a real 2-worker server: 30 labels sent as feedback raise that site's score for a comment of their
    kind, under a new model version, within the refit window; another site's score stays."""
    engine = db.make_engine(db_url)
    db.upgrade(engine)
    folder = tmp_path / "models"
    with db.make_sessionmaker(engine)() as session:
        save_and_register(session, folder, starter_model("base-1"), promote=True)
        _, key = create_site(session, "Texts")
        _, other_key = create_site(session, "Other")
    engine.dispose()
    headers, other = {"Authorization": f"Bearer {key}"}, {"Authorization": f"Bearer {other_key}"}
    env = service_env(
        tmp_path, db_url, folder, MODEL_RELOAD_SECONDS="1", SITE_REFIT_SECONDS="3", SITE_REFIT_LABELS="1000"
    )

    def probe(base: str, auth: dict[str, str]) -> tuple[float, str]:
        answer = httpx.post(f"{base}/api/v1/comments/check", json={"content": PROBE.content}, headers=auth, timeout=10)
        body = answer.json()
        return body["score"], body["model_version"]

    with serve(env, tmp_path / "server.log", workers=2) as server:
        before, version = probe(server.base, headers)
        assert version == "base-1"
        for text, label in _campaign(15, seed=5):
            checked = httpx.post(f"{server.base}/api/v1/comments/check", json={"content": text}, headers=headers).json()
            fed = httpx.post(
                f"{server.base}/api/v1/comments/{checked['id']}/feedback", json={"label": label.value}, headers=headers
            )
            assert fed.status_code == 200, fed.text
        labelled_at = time.monotonic()
        while True:
            after, version = probe(server.base, headers)
            if version != "base-1" and after > before + 0.2:
                break
            assert time.monotonic() - labelled_at < 90, f"still {after:.3f} from {version}:\n{server.log()[-3000:]}"
            time.sleep(1)
        while {probe(server.base, headers)[1] for _ in range(8)} != {version}:  # until both workers reloaded it
            assert time.monotonic() - labelled_at < 90, server.log()[-3000:]
            time.sleep(0.5)
        assert probe(server.base, other)[0] == pytest.approx(before, abs=1e-6)
        assert "Traceback" not in server.log()


def test_the_served_app_starts_its_learner_with_its_first_request(tmp_path, db_url):
    """`gunicorn wsgi:app` learns as `moderation serve` does: the learner starts in the process that serves the
    first request (not at import, which a forking server would leave in its parent), and not at all when off."""
    config = {"DATABASE_URL": db_url, "MODEL_DIR": str(tmp_path / "models"), "INSTANCE_PATH": str(tmp_path)}
    app = wsgi_app({**config, "SITE_REFIT_SECONDS": "30"})
    learner = app.extensions["site_learner"]
    assert not learner.running
    app.test_client().get("/healthz")
    try:
        assert learner.running
    finally:
        learner.stop(timeout=10)
    off = wsgi_app({**config, "SITE_REFIT_SECONDS": "0"})
    off.test_client().get("/healthz")
    assert "site_learner" not in off.extensions
