"""Smoke tests of the benchmark harness on the tiny inline corpus (peers skip when not installed)."""

from __future__ import annotations

import email
import email.policy

import numpy as np
import pytest

from benchmarks.accuracy import compare, review_band, review_workload
from benchmarks.peers import Bogofilter, SpamAssassinBayes, to_rfc822
from benchmarks.speed import parse_wrk, percentiles
from moderation.comment import Comment, Label
from moderation.core.evaluation import Split


def _split(tiny_corpus):
    """A train/test division of the tiny corpus that keeps both labels on both sides."""
    train = tiny_corpus[:5] + tiny_corpus[8:13]
    test = tiny_corpus[5:8] + tiny_corpus[13:]
    return Split("tiny", "tiny", tuple(train), tuple(test))


def test_rfc822_carries_author_and_body_only():
    """A comment becomes a parseable message with the author in From and the UTF-8 text as the body."""
    raw = to_rfc822(Comment(content="Grüße\nFrom the coast", author_name="Ana\nBcc: x", author_email="ana@ex.org"))
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message["From"].addresses[0].display_name == "Ana Bcc: x"
    assert message["From"].addresses[0].addr_spec == "ana@ex.org"
    assert message.get_content() == "Grüße\nFrom the coast\n"
    assert set(message.keys()) == {"From", "Content-Type", "Content-Transfer-Encoding", "MIME-Version"}


def test_review_band_is_narrowest_with_required_accuracy():
    """Perfectly separated scores need no review; overlapping ones are sent to review only where they overlap."""
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    assert review_workload(y, np.linspace(0, 1, 8), review_band(y, np.linspace(0, 1, 8)))["review_share"] == 0.0
    scores = np.array([0.1, 0.2, 0.3, 0.6, 0.4, 0.7, 0.8, 0.9])
    band = review_band(y, scores)
    result = review_workload(y, scores, band)
    assert result["auto_accuracy"] == 1.0
    assert result["review_share"] == pytest.approx(2 / 8)
    assert band == (0.4, 0.7)


def test_review_band_sends_everything_when_nothing_is_accurate_enough():
    """Scores that carry no information leave every comment for a human."""
    y = np.array([0, 1] * 20)
    result = review_workload(y, np.full(40, 0.5), review_band(y, np.full(40, 0.5)))
    assert result["review_share"] == 1.0


@pytest.mark.parametrize("peer", [Bogofilter, SpamAssassinBayes])
def test_peer_trains_and_scores_tiny_corpus(peer, tiny_corpus, tmp_path):
    """Each peer, when installed, trains on the tiny corpus and scores spam above ham on average."""
    if reason := peer.missing():
        pytest.skip(reason)
    split = _split(tiny_corpus)
    fitted = peer(tmp_path).fit(split.train)
    try:
        scores = fitted.scores([e.comment for e in split.test])
    finally:
        fitted.close()
    y = np.array([e.label is Label.SPAM for e in split.test])
    assert scores.shape == (len(split.test),)
    scores = np.where(np.isnan(scores), 0.5, scores)
    assert scores[y].mean() > scores[~y].mean()
    assert not list(tmp_path.iterdir())


def test_compare_runs_model_and_baseline_on_a_split(tiny_corpus):
    """The harness trains each method on the split, picks operating points out of fold and reports every metric."""
    [result] = compare([_split(tiny_corpus)], ["model", "baseline"], folds=2)
    for method in ("model", "baseline"):
        metrics = result.runs[method].metrics
        for key in ("mcc", "f1", "ham_blocked", "roc_auc", "recall_at_1pct_fpr", "review_share"):
            assert key in metrics
        assert len(result.runs[method].oof_scores) == 10


def test_parse_wrk_and_percentiles():
    """wrk's latency report is parsed into requests/s and milliseconds; percentiles come out in ms."""
    output = """Running 3s test @ http://127.0.0.1:1/healthz
  Latency Distribution
     50%  812.00us
     75%    1.20ms
     90%    2.50ms
     99%   10.01ms
  3000 requests in 3.00s, 1.00MB read
  Non-2xx or 3xx responses: 4
Requests/sec:   1000.50
"""
    parsed = parse_wrk(output)
    assert parsed["rps"] == 1000.5 and parsed["p50_ms"] == pytest.approx(0.812) and parsed["p99_ms"] == 10.01
    assert parsed["non_2xx"] == 4 and parsed["requests"] == 3000
    assert percentiles([0.001, 0.002, 0.003])["p50_ms"] == pytest.approx(2.0)


def test_run_refuses_a_folder_without_corpora(tmp_path, capsys):
    """The single entry point stops with one clear line when the corpora are not where --data says."""
    from benchmarks.run import main

    with pytest.raises(SystemExit) as stopped:
        main(["--quick", "--data", str(tmp_path), "--out", str(tmp_path / "out")])
    assert stopped.value.code == 2
    assert "expected the public corpora" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_http_report_names_threads_and_the_open_loop(tmp_path):
    """The HTTP headline and section say how many threads served and the latency at the fixed rate."""
    from benchmarks import report

    level = {"rps": 500.0, "p50_ms": 5.0, "p99_ms": 9.0, "non_2xx": 0.0, "socket_errors": 0.0}
    http = {
        "workers": 2,
        "threads": 4,
        "seconds": 10,
        "database": "PostgreSQL",
        "levels": [{"connections": 8, "healthz": {**level, "rps": 5000.0}, "check": level}],
        "open_loop": {"rate": 400.0, "clients": 8, "rps": 399.0, "p50_ms": 2.0, "p90_ms": 3.0, "p99_ms": 7.5},
    }
    http["open_loop"]["non_2xx"] = 0
    headline = report._http_headline(http)
    assert "2 workers × 4 threads (gthread)" in headline
    assert "at 8 connections 500 checks/s, p99 9.0 ms" in headline
    assert "400 checks/s offered by 8 clients: p99 7.5 ms" in headline
    section = "\n".join(report._http_lines(http, tmp_path, "http.png"))
    assert "**p99 7.50 ms**" in section and "ANALYZEd" not in section
    assert "ANALYZEd after the warm-up" in "\n".join(report._http_lines({**http, "analyzed": True}, tmp_path, "h.png"))
    assert report._workers({**http, "threads": 1}) == "2 sync workers"


def test_report_embeds_standalone_write_ups(tmp_path):
    """A regenerated report carries the write-ups of benchmarks that run on their own, links pointing at <out>/."""
    from benchmarks import report

    out = tmp_path / "benchmarks"
    out.mkdir()
    (out / "adaptation.md").write_text(
        "## Adaptation\n\n![curve](adaptation.png) and [site](https://example.org/) and [up](#speed)\n",
        encoding="utf-8",
    )
    machine = {"cpu": "test CPU", "cores": 2, "memory": "1 GiB", "load_average": [0.1], "os": "Linux", "python": "3"}
    machine |= {"libraries": {}, "bogofilter": "-", "spamassassin": "-", "wrk": "-", "git_commit": "0"}
    results = {"mode": "quick", "seconds": 60.0, "cpu_seconds": 90.0, "machine": machine}
    path = report.write(results, [], out, tmp_path / "benchmarks.md")
    text = path.read_text(encoding="utf-8")
    assert "## Adaptation" in text
    assert "![curve](benchmarks/adaptation.png)" in text
    assert "(https://example.org/)" in text and "(#speed)" in text
    assert "refit" not in text.lower()  # no write-up there, no section
