"""Growth with corpus size: training time, artifact size, load time, memory and scoring speed from 1k to 100k comments.

The corpora hold about 7,500 distinct comments, so larger training sets are drawn by resampling with
replacement (`resample`): beyond the pool's size the vocabulary stops growing, so these figures show how
the *number* of comments costs, not how a bigger vocabulary would. bogofilter is trained on the same
resample in the same run for comparison.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from moderation.comment import Comment, LabelledComment

from .speed import batch_throughput, latency, load_in_fresh_process

Progress = Callable[[str], None]


def resample(pool: Sequence[LabelledComment], n: int, seed: int = 0) -> list[LabelledComment]:
    """`n` examples drawn from `pool`: all of it once when n ≥ len(pool), the rest with replacement."""
    rng = np.random.default_rng(seed)
    if n <= len(pool):
        return [pool[i] for i in rng.choice(len(pool), size=n, replace=False)]
    extra = rng.choice(len(pool), size=n - len(pool), replace=True)
    return list(pool) + [pool[i] for i in extra]


def grow(
    pool: Sequence[LabelledComment],
    sizes: Sequence[int],
    probe: Sequence[Comment],
    *,
    with_bogofilter: bool = True,
    progress: Progress = print,
) -> list[dict[str, Any]]:
    """For each size: train the model (and bogofilter), save and reload it, and time scoring `probe` comments."""
    from moderation.core.classifier import fit_model
    from moderation.core.model_store import save_model

    from .peers import Bogofilter

    rows = []
    for n in sizes:
        examples = resample(pool, n)
        row: dict[str, Any] = {"n": n}
        started = time.perf_counter()
        model = fit_model(examples, version=f"scale-{n}").model
        row["train_s"] = time.perf_counter() - started
        with tempfile.TemporaryDirectory(prefix="bench-scale-") as scratch:
            manifest = save_model(Path(scratch), model, data={"n": n}, metrics={})
            row["artifact_mb"] = manifest.size_bytes / 1e6
            row.update(load_in_fresh_process(Path(scratch)))
        summary, _ = latency(model, probe)
        row["p50_ms"], row["p99_ms"] = summary["p50_ms"], summary["p99_ms"]
        row["batch_per_s"] = batch_throughput(model, probe)["predict_proba_per_s"]
        if with_bogofilter and Bogofilter.missing() is None:
            peer = Bogofilter()
            try:
                row["bogofilter_train_s"] = peer.fit(examples).fit_seconds
            finally:
                peer.close()
        progress(
            f"  {n} comments: train {row['train_s']:.1f} s, artifact {row['artifact_mb']:.1f} MB, "
            f"load {row['load_s']:.2f} s, RSS {row['rss_after_scoring_mb']:.0f} MB, p50 {row['p50_ms']:.2f} ms"
        )
        rows.append(row)
        del model
    return rows
