"""`moderation sites import`: a site's history (WordPress, Disqus, CSV, JSONL) stored all or nothing, model fitted."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from learning_helpers import domain, new_site, save_and_register, store_labelled
from sqlalchemy import func, select

from moderation.comment import Comment, Label
from moderation.core.exports import detect_format, read_export
from moderation.core.model_store import load_model
from moderation.errors import DataError
from moderation.learning.retrain import RetrainOptions
from moderation.learning.site_import import import_history
from moderation.learning.site_learning import daily_counts
from moderation.store import registry
from moderation.store.schema import CommentRecord, LabelRecord

FIXTURES = Path(__file__).parent / "fixtures"
MODERATION = str(Path(sys.executable).parent / "moderation")
CAMPAIGN = "join our discord server for the weekly meetup"


def _count(session, model=CommentRecord) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


def _history_csv(path: Path, n: int = 15) -> Path:
    """A CSV export: `n` comments of a campaign the site called spam, `n` ordinary approved ones, with dates."""
    rows = ["content,author_name,label,created_at"]
    rows += [f'"{CAMPAIGN} number {i}",promo,spam,2021-05-{i % 28 + 1:02d}' for i in range(n)]
    rows += [f'"{e.comment.content}",reader,ham,2021-06-01T10:00:00' for e in domain(0, n, seed=8)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_each_format_is_read_with_its_labels_and_skips():
    """WXR: approved → ham, spam → spam, pending and trash skipped; Disqus: isSpam, isDeleted skipped; CSV/JSONL."""
    wxr = read_export(FIXTURES / "wordpress.xml", detect_format(FIXTURES / "wordpress.xml"))
    assert [c.label for c in wxr.comments] == [Label.HAM, Label.SPAM, Label.HAM, Label.SPAM]
    assert wxr.skipped == {"pending": 1, "trash": 1}
    assert wxr.comments[0].where.endswith("wordpress.xml:14")
    disqus = read_export(FIXTURES / "disqus.xml", detect_format(FIXTURES / "disqus.xml"))
    assert [c.label for c in disqus.comments] == [Label.HAM, Label.SPAM, Label.SPAM]
    assert disqus.skipped == {"deleted": 1}
    assert disqus.comments[0].comment.content == "Thanks, the second example fixed my build & my mood."
    assert "http://followers.example.test" in disqus.comments[1].comment.content
    assert disqus.comments[0].created_at == datetime(2019, 3, 2, 8, 30, tzinfo=UTC)
    assert disqus.comments[0].comment.author_email == "ada@example.org"
    for name in ("site-export.csv", "site-export.jsonl"):
        assert {c.label for c in read_export(FIXTURES / name, detect_format(FIXTURES / name)).comments} == {
            Label.SPAM,
            Label.HAM,
        }


def test_hostile_or_wrong_files_fail_naming_file_and_line(tmp_path):
    """An XML bomb, another format than the one named, and a bad row: one DataError saying where."""
    with pytest.raises(DataError, match=r"xml-bomb\.xml:2: refused unsafe XML"):
        read_export(FIXTURES / "xml-bomb.xml", "wxr")
    with pytest.raises(DataError, match=r"disqus\.xml:2: expected a WordPress WXR export \(<rss>\), found <disqus>"):
        read_export(FIXTURES / "disqus.xml", "wxr")
    with pytest.raises(DataError, match=r"site-export\.csv:1: expected well-formed XML"):
        read_export(FIXTURES / "site-export.csv", "disqus")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"content": "fine", "label": "ham"}\n{"content": "odd", "label": "maybe"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.jsonl:2"):
        read_export(bad, "jsonl")
    broken = tmp_path / "broken.xml"
    broken.write_text((FIXTURES / "wordpress.xml").read_text().replace("<![CDATA[spam]]>", "<![CDATA[maybe]]>", 1))
    with pytest.raises(DataError, match=r"broken\.xml:24: expected wp:comment_approved 1, 0, spam or trash, found 'm"):
        read_export(broken, "wxr")
    with pytest.raises(DataError, match="pass --format"):
        detect_format(tmp_path / "export.txt")


def test_an_import_stores_the_history_and_fits_the_sites_model_at_once(champion_store, tmp_path):
    """A CSV history of 30 labels: stored with source "import" and their dates, the site served by its own model,
    which scores the campaign higher than the global model; importing it again adds nothing."""
    engine, session, folder = champion_store
    site, other = new_site(session), new_site(session, "other")
    path = _history_csv(tmp_path / "history.csv")
    lines: list[str] = []
    result = import_history(engine, folder, site.id, path, "csv", RetrainOptions(), progress=lines.append)
    assert (result.stored, result.spam, result.ham, result.already) == (30, 15, 15, 0)
    assert result.version == registry.champion(session).version and result.site_model_labels == 30
    assert any("read 30 labelled comments" in line for line in lines)
    rows = session.scalars(select(CommentRecord).where(CommentRecord.site_id == site.id)).all()
    assert {r.source for r in rows} == {"import"} and {r.status for r in rows} == {"spam", "approve"}
    assert min(r.created_at for r in rows) == datetime(2021, 5, 1, tzinfo=UTC)
    assert {label.source for r in rows for label in r.labels} == {"import"}
    model = load_model(folder, result.version)
    probe = Comment(f"{CAMPAIGN} on friday", author_name="Kim")
    assert model.score_for_site(probe, site.id).probability > model.predict_proba([probe])[0] + 0.2
    assert other.id not in model.sites

    again = import_history(engine, folder, site.id, path, "csv", RetrainOptions())
    assert (again.stored, again.already) == (0, 30)
    assert _count(session) == 30


def test_a_bad_row_late_in_the_file_stores_nothing(champion_store, tmp_path):
    """The rows before a bad one are not stored either: the whole file is read before anything is written."""
    engine, session, folder = champion_store
    site = new_site(session)
    path = _history_csv(tmp_path / "history.csv")
    path.write_text(path.read_text() + "\"last one\",x,perhaps,2021-07-01\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"history\.csv:32"):
        import_history(engine, folder, site.id, path, "csv", RetrainOptions())
    assert _count(session) == 0 and _count(session, LabelRecord) == 0


def test_imported_labels_keep_out_of_the_daily_cap_of_live_labels(champion_store, tmp_path):
    """Today's imported history and today's moderator labels are capped in separate buckets."""
    engine, session, folder = champion_store
    site = new_site(session)
    import_history(engine, folder, site.id, FIXTURES / "disqus.xml", "disqus", RetrainOptions())
    store_labelled(session, site, [("a live moderator decision", Label.SPAM)])
    counts = daily_counts(session)
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    assert counts[(site.id, today)] == 1
    assert counts[(site.id, "2019-03-02 import")] == 2 and counts[(site.id, "2019-03-04 import")] == 1


def test_cli_import_reports_and_refuses_an_xml_bomb(tmp_path, champion_model):
    """`sites import` prints what it stored and skipped; an XML bomb exits 1 with one line, storing nothing."""
    from moderation.store import db
    from moderation.store.sites import create_site

    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    folder = tmp_path / "models"
    with db.make_sessionmaker(engine)() as session:
        save_and_register(session, folder, champion_model, promote=True)
        site, _ = create_site(session, "Blog")
    env = {**os.environ, "MODERATION_DATABASE_URL": url, "MODERATION_MODEL_DIR": str(folder)}
    command = [MODERATION, "sites", "import", str(site.id), str(FIXTURES / "wordpress.xml")]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "stored 4 comments (2 spam, 2 ham); skipped 1 pending, 1 trash" in done.stdout
    bomb = subprocess.run(
        [MODERATION, "sites", "import", str(site.id), str(FIXTURES / "xml-bomb.xml"), "--format", "wxr"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert bomb.returncode == 1 and "xml-bomb.xml:2" in bomb.stderr and "Traceback" not in bomb.stderr
    with db.make_sessionmaker(engine)() as session:
        assert _count(session) == 4
    engine.dispose()
