"""`moderation train`, `evaluate` and `check`: JSON verdicts out, user mistakes as one clear line."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from moderation.cli import main
from moderation.comment import Label
from moderation.core import evaluation, model_store
from moderation.core.corpora import deduplicate, load_folder
from moderation.core.training import train_and_save

SPAMMY = "Cheap viagra cialis online http://pills-shop.xyz buy now"


@pytest.fixture
def runner():
    """A CLI runner with the model and data settings cleared from the environment."""
    return CliRunner(env={"MODERATION_MODEL_DIR": None, "MODERATION_DATA_DIR": None})


@pytest.fixture
def trained(tmp_path_factory, tiny_corpus):
    """A model folder holding one model trained on the tiny corpus."""
    folder = tmp_path_factory.mktemp("models")
    train_and_save(folder, examples=tiny_corpus)
    return folder


def _one_line_error(result) -> str:
    """Assert the command failed with one final 'Error:' line, no traceback, nothing on stdout; return it."""
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error")]
    assert errors == lines[-1:], result.stderr  # progress lines may precede it, nothing follows
    return lines[-1]


def test_check_prints_a_json_verdict(runner, trained):
    """One comment from options gives score, decision, reasons, rules and model version."""
    result = runner.invoke(main, ["check", "--model-dir", str(trained), "--content", SPAMMY, "--author-name", "pills"])
    assert result.exit_code == 0, result.output
    verdict = json.loads(result.output)
    assert set(verdict) == {"score", "decision", "reasons", "rules", "model_version"}
    assert 0.0 <= verdict["score"] <= 1.0
    assert verdict["decision"] in {"approve", "hold", "spam", "discard"}
    assert verdict["model_version"] == model_store.current_version(trained)
    model = model_store.load_model(trained)
    assert verdict["decision"] == model.thresholds.decide(verdict["score"]) and verdict["rules"] == []


def test_check_reads_the_model_dir_setting(runner, trained):
    """Without --model-dir the MODERATION_MODEL_DIR setting is used."""
    result = runner.invoke(main, ["check", "--content", "hello"], env={"MODERATION_MODEL_DIR": str(trained)})
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["model_version"] == model_store.current_version(trained)


def test_check_jsonl_gives_one_verdict_per_line(runner, trained):
    """Each comment object on stdin yields one verdict line, in order, echoing an id when given."""
    lines = [
        json.dumps({"id": 7, "content": SPAMMY, "author_url": "http://pills-shop.xyz"}),
        "",
        json.dumps({"content": "Thanks, the PATH trick fixed my build.", "user_agent": "Firefox"}),
    ]
    result = runner.invoke(main, ["check", "--jsonl", "--model-dir", str(trained)], input="\n".join(lines) + "\n")
    assert result.exit_code == 0, result.output
    verdicts = [json.loads(line) for line in result.output.splitlines()]
    assert len(verdicts) == 2
    assert verdicts[0]["id"] == 7 and "id" not in verdicts[1]
    assert verdicts[0]["score"] > verdicts[1]["score"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "stdin line 1: expected one JSON object per line, found invalid JSON"),
        ("[1, 2]", "stdin line 1: expected a JSON object, found list"),
        ('{"author_name": "x"}', "stdin line 1: expected a 'content' string, found NoneType"),
        ('{"content": "hi", "user_ip": 5}', "stdin line 1: expected 'user_ip' to be a string, found int"),
    ],
)
def test_check_bad_jsonl_line_is_one_clear_error(runner, trained, line, message):
    """A malformed input line stops the run with one line naming the line number."""
    result = runner.invoke(main, ["check", "--jsonl", "--model-dir", str(trained)], input=line + "\n")
    assert message in _one_line_error(result)


def test_check_without_a_model_is_one_clear_error(runner, tmp_path):
    """An empty model folder gives a one-line error pointing at `moderation train`."""
    result = runner.invoke(main, ["check", "--model-dir", str(tmp_path), "--content", "hi"])
    assert "moderation train" in _one_line_error(result)


def test_check_with_a_tampered_model_is_one_clear_error(runner, trained):
    """A flipped byte in the artifact is refused with a one-line error."""
    version = model_store.current_version(trained)
    path = trained / f"{version}.joblib"
    payload = bytearray(path.read_bytes())
    payload[100] ^= 0xFF
    path.write_bytes(bytes(payload))
    result = runner.invoke(main, ["check", "--model-dir", str(trained), "--content", "hi"])
    assert "SHA-256" in _one_line_error(result)


def test_check_needs_content_or_jsonl(runner, trained):
    """Neither --content nor --jsonl is a usage mistake reported in one line."""
    result = runner.invoke(main, ["check", "--model-dir", str(trained)])
    assert "--content" in _one_line_error(result)


def test_check_refuses_a_traversing_version(runner, trained):
    """--model-version cannot name a file outside the model folder."""
    result = runner.invoke(main, ["check", "--model-dir", str(trained), "--model-version", "../x", "--content", "hi"])
    assert "path separators" in _one_line_error(result)


def test_train_with_a_missing_data_folder_is_one_clear_error(runner, tmp_path):
    """A --data folder that does not exist fails in one line before any training."""
    result = runner.invoke(main, ["train", "--data", str(tmp_path / "nope"), "--model-dir", str(tmp_path / "m")])
    assert "does not exist" in _one_line_error(result)
    assert not (tmp_path / "m").exists()


def _write_youtube(folder: Path, tiny_corpus) -> None:
    """A miniature YouTube collection: the tiny corpus spread over three 'videos' in the published CSV layout."""
    target = folder / "youtube-spam-collection"
    target.mkdir(parents=True)
    for number in range(3):
        with (target / f"Youtube0{number + 1}-Video{number}.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["COMMENT_ID", "AUTHOR", "DATE", "CONTENT", "CLASS"])
            for i, example in enumerate(tiny_corpus):
                content = f"{example.comment.content} (video {number} copy)"
                label = 1 if example.label == Label.SPAM else 0
                writer.writerow([f"id{number}-{i}", example.comment.author_name or "someone", "", content, label])


@pytest.fixture
def without_shipped(monkeypatch):
    """Evaluate reads only the --data folder (the shipped corpora would make every split minutes long)."""
    given: list[Path | None] = []

    def folder_only(data_dir: Path | None):
        given.append(data_dir)
        return deduplicate(load_folder(data_dir)) if data_dir is not None else []

    monkeypatch.setattr(evaluation, "build_training_set", folder_only)
    return given


def test_evaluate_without_data_reads_the_shipped_corpora_alone(runner, tmp_path, without_shipped):
    """With no --data and no MODERATION_DATA_DIR, evaluate asks for the shipped corpora and nothing else."""
    runner.invoke(main, ["evaluate", "--protocol", "lovo-youtube", "--out", str(tmp_path / "out")])
    assert without_shipped == [None]


def test_evaluate_writes_a_report_with_plots(runner, tmp_path, tiny_corpus, without_shipped):
    """On a miniature YouTube collection, evaluate writes report.md, results.json and PNG plots."""
    _write_youtube(tmp_path / "data", tiny_corpus)
    out = tmp_path / "out"
    result = runner.invoke(
        main, ["evaluate", "--data", str(tmp_path / "data"), "--out", str(out), "--protocol", "lovo-youtube"]
    )
    assert result.exit_code == 0, result.output
    assert "lovo-youtube  model" in result.output and "baseline" in result.output
    report = (out / "report.md").read_text()
    assert "roc-lovo-youtube.png" in report and "scores-lovo-youtube.png" in report
    assert (out / "roc-lovo-youtube.png").read_bytes().startswith(b"\x89PNG")
    assert (out / "scores-lovo-youtube.png").read_bytes().startswith(b"\x89PNG")
    results = json.loads((out / "results.json").read_text())
    assert len(results["splits"]) == 3


def test_evaluate_sms_protocol_without_sms_is_one_clear_error(runner, tmp_path, tiny_corpus, without_shipped):
    """Asking for an SMS protocol on a folder without SMS fails in one line."""
    _write_youtube(tmp_path / "data", tiny_corpus)
    result = runner.invoke(main, ["evaluate", "--data", str(tmp_path / "data"), "--protocol", "sms-cv"])
    assert "SMS Spam Collection" in _one_line_error(result)


def _installed_script() -> str:
    script = Path(sys.executable).with_name("moderation")
    return str(script) if script.exists() else shutil.which("moderation") or ""


@pytest.mark.skipif(not _installed_script(), reason="the `moderation` console script is not installed")
def test_installed_script_checks_a_stream(trained):
    """The real `moderation` script scores a JSONL stream and reports a bad line on stderr only."""
    env = {**os.environ, "MODERATION_MODEL_DIR": str(trained)}
    stream = json.dumps({"content": SPAMMY}) + "\n" + json.dumps({"content": "Lovely photos of the coast."}) + "\n"
    checked = subprocess.run(
        [_installed_script(), "check", "--jsonl"], env=env, input=stream, capture_output=True, text=True, timeout=120
    )
    assert checked.returncode == 0, checked.stderr
    verdicts = [json.loads(line) for line in checked.stdout.splitlines()]
    assert [set(v) for v in verdicts] == [{"score", "decision", "reasons", "rules", "model_version"}] * 2
    broken = subprocess.run(
        [_installed_script(), "check", "--jsonl"], env=env, input="{oops\n", capture_output=True, text=True, timeout=120
    )
    assert broken.returncode == 1
    assert broken.stdout == ""
    assert broken.stderr.startswith("Error: stdin line 1") and broken.stderr.count("\n") == 1


@pytest.mark.slow
@pytest.mark.skipif(not _installed_script(), reason="the `moderation` console script is not installed")
def test_installed_script_trains_on_the_starter_corpus(tmp_path):
    """The real `moderation train` builds a current model, with progress on stderr and a summary on stdout."""
    env = {**os.environ, "MODERATION_MODEL_DIR": str(tmp_path / "models")}
    env.pop("MODERATION_DATA_DIR", None)
    trained = subprocess.run(
        [_installed_script(), "train"], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert trained.returncode == 0, trained.stderr
    assert "made current" in trained.stdout
    assert "fold 1/5" in trained.stderr
    assert model_store.current_version(tmp_path / "models") is not None


def test_check_as_a_site_reads_its_history_and_stores_only_with_store(runner, trained, tmp_path):
    """--site applies the site's policy and history read-only; --store adds each comment as the API would."""
    from moderation.store import db
    from moderation.store.schema import CommentRecord
    from moderation.store.sites import create_site

    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    with db.make_sessionmaker(engine)() as session:
        site, _key = create_site(session, "Blog", settings={"flood_max": 1})
        site_id = site.id
    env = {"MODERATION_DATABASE_URL": url}
    args = ["check", "--model-dir", str(trained), "--site", str(site_id), "--content", "hi", "--user-ip", "192.0.2.7"]

    def stored() -> int:
        with db.make_sessionmaker(engine)() as session:
            return session.query(CommentRecord).count()

    first = runner.invoke(main, args, env=env)
    assert first.exit_code == 0, first.output
    assert json.loads(first.output)["rules"] == [] and stored() == 0
    assert runner.invoke(main, [*args, "--store"], env=env).exit_code == 0 and stored() == 1
    again = json.loads(runner.invoke(main, args, env=env).output)
    assert "flood" in again["rules"] and stored() == 1
    missing = runner.invoke(main, ["check", "--model-dir", str(trained), "--store", "--content", "hi"])
    assert missing.exit_code != 0 and "--store needs --site" in _one_line_error(missing)
    engine.dispose()
