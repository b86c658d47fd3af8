"""Peer filters for the benchmark: bogofilter and SpamAssassin's Bayes classifier, driven by their own tools.

    peer = Bogofilter(work_dir).fit(train)      # bogofilter -d DIR -s -M / -n -M on two mbox files
    scores = peer.scores(comments)              # bogofilter -d DIR -M -T: one spamicity per message

Each comment becomes an RFC-822 message (`to_rfc822`): a From header carrying the author's name (and
e-mail address when the corpus has one), a UTF-8 text/plain body holding the content as written. No
header carries anything label-related (no ids, dates or sequence numbers), so the peers see exactly the
author and text our model sees.

SpamAssassin is trained with `sa-learn --spam/--ham --mbox --dbpath` and scored through its own Perl
API (`Mail::SpamAssassin->check`, what the `spamassassin` script calls) from one long-lived Perl
process, with a configuration that loads only the Check and Bayes plugins and the BAYES_xx rules:
network tests off, auto-learning off. The score is the Bayes probability itself (the value the
BAYES_xx rules bucket), read at full precision.

Both peers need their Debian packages (`apt-get install bogofilter spamassassin`); `missing()` returns
the reason a peer cannot run, so callers can skip it.
"""

from __future__ import annotations

import mailbox
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from email.message import EmailMessage
from email.policy import default
from email.utils import formataddr
from pathlib import Path

import numpy as np

from moderation.comment import Comment, Label, LabelledComment

PLACEHOLDER_ADDRESS = "author@example.invalid"


def to_rfc822(comment: Comment) -> bytes:
    """The comment as an e-mail message: From with the author, UTF-8 plain-text body with the content."""
    # Unix line endings (mbox files are LF) and raw UTF-8 in headers rather than RFC 2047 encoded words.
    message = EmailMessage(policy=default.clone(utf8=True))
    address = comment.author_email if "@" in comment.author_email else PLACEHOLDER_ADDRESS
    # Newlines in an author field would fold into new headers; a display name is one line.
    name = " ".join(comment.author_name.split())
    message["From"] = formataddr((name, address)) if name else address
    body = comment.content if comment.content.endswith("\n") else comment.content + "\n"
    message.set_content(body, charset="utf-8", cte="8bit")
    return message.as_bytes()


def write_mbox(path: Path, comments: Sequence[Comment]) -> Path:
    """Write `comments` as one mbox file (mailbox escapes body lines that start with "From ")."""
    box = mailbox.mbox(str(path), create=True)
    try:
        box.lock()
        for comment in comments:
            box.add(to_rfc822(comment))
        box.flush()
    finally:
        box.unlock()
        box.close()
    return path


def _split_by_label(examples: Sequence[LabelledComment]) -> tuple[list[Comment], list[Comment]]:
    spam = [e.comment for e in examples if e.label is Label.SPAM]
    ham = [e.comment for e in examples if e.label is Label.HAM]
    return spam, ham


def _run(cmd: Sequence[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]


class Peer:
    """A trainable external filter: `fit` on labelled comments, then `scores` (spam probability) per comment."""

    name = "peer"
    executables: tuple[str, ...] = ()

    def __init__(self, base_dir: Path | None = None) -> None:
        self.base_dir = base_dir
        self.work_dir: Path | None = None
        self.fit_seconds = 0.0

    @classmethod
    def missing(cls) -> str | None:
        """Why this peer cannot run here (a missing executable), or None when it can."""
        absent = [exe for exe in cls.executables if shutil.which(exe) is None]
        if absent:
            return f"{', '.join(absent)} not installed (apt-get install {cls.package})"
        return None

    package = ""

    def _fresh_dir(self) -> Path:
        if self.work_dir is not None:
            shutil.rmtree(self.work_dir, ignore_errors=True)
        self.work_dir = Path(tempfile.mkdtemp(prefix=f"{self.name}-", dir=self.base_dir))
        return self.work_dir

    def close(self) -> None:
        """Delete the peer's database and scratch files."""
        if self.work_dir is not None:
            shutil.rmtree(self.work_dir, ignore_errors=True)
            self.work_dir = None

    def fit(self, examples: Sequence[LabelledComment]) -> Peer:
        """Train a fresh database on `examples`; returns self."""
        raise NotImplementedError

    def scores(self, comments: Sequence[Comment]) -> np.ndarray:
        """Spam probability of each comment from the trained database."""
        raise NotImplementedError


class Bogofilter(Peer):
    """bogofilter 1.2 (Robinson-Fisher), default settings, one database per fit."""

    name = "bogofilter"
    package = "bogofilter"
    executables = ("bogofilter",)

    def _db(self) -> Path:
        if self.work_dir is None:
            raise RuntimeError("bogofilter: call fit() before scores()")
        return self.work_dir / "db"

    def fit(self, examples: Sequence[LabelledComment]) -> Bogofilter:
        """Register spam with `-s -M` and ham with `-n -M` into a new database directory."""
        work = self._fresh_dir()
        db = work / "db"
        db.mkdir()
        spam, ham = _split_by_label(examples)
        started = time.perf_counter()
        for flag, comments in (("-s", spam), ("-n", ham)):
            box = write_mbox(work / f"train{flag}.mbox", comments)
            with box.open("rb") as stdin:
                result = subprocess.run(
                    ["bogofilter", "-C", "-d", str(db), flag, "-M"], stdin=stdin, capture_output=True, check=False
                )
            if result.returncode not in (0, 1, 2):
                raise RuntimeError(f"bogofilter {flag} failed: {result.stderr.decode(errors='replace').strip()}")
        self.fit_seconds = time.perf_counter() - started
        return self

    def scores(self, comments: Sequence[Comment]) -> np.ndarray:
        """Spamicity of each comment from `bogofilter -M -T` (one `S|H|U value` line per message)."""
        self._db()
        assert self.work_dir is not None
        box = write_mbox(self.work_dir / "score.mbox", comments)
        try:
            values = self.score_mbox(box)
        finally:
            box.unlink()
        if len(values) != len(comments):
            raise RuntimeError(f"bogofilter: expected {len(comments)} scores, found {len(values)}")
        return values

    def score_mbox(self, box: Path) -> np.ndarray:
        """Spamicity of each message of an mbox file, in order (one bogofilter process)."""
        with box.open("rb") as stdin:
            result = subprocess.run(
                ["bogofilter", "-C", "-d", str(self._db()), "-M", "-T"], stdin=stdin, capture_output=True, check=False
            )
        # Exit 0/1/2 are spam/ham/unsure for the last message; 3 is an error.
        if result.returncode == 3:
            raise RuntimeError(f"bogofilter failed: {result.stderr.decode(errors='replace').strip()}")
        lines = result.stdout.decode().split("\n")
        return np.asarray([float(line.split()[1]) for line in lines if line.strip()], dtype=float)

    def score_one_process(self, comment: Comment) -> float:
        """Score one message with one bogofilter process (how an MTA pipe calls it)."""
        result = subprocess.run(
            ["bogofilter", "-C", "-d", str(self._db()), "-T"],
            input=to_rfc822(comment),
            capture_output=True,
            check=False,
        )
        return float(result.stdout.split()[1])


# Only the Check plugin (needed to scan at all) and Bayes are loaded; 20_aux_tlds.cf is included because
# SpamAssassin refuses to parse URIs without a TLD list. bayes_min_*_num are lowered from 200 so that the
# harness's small smoke-test corpora still get a Bayes verdict (the real splits have ≥ 400 of each).
SA_CONFIG = """\
loadplugin Mail::SpamAssassin::Plugin::Check
loadplugin Mail::SpamAssassin::Plugin::Bayes
include /usr/share/spamassassin/20_aux_tlds.cf
use_bayes 1
use_bayes_rules 1
bayes_auto_learn 0
bayes_learn_to_journal 0
bayes_min_ham_num 1
bayes_min_spam_num 1
bayes_path {bayes_path}
body BAYES_00 eval:check_bayes('0.00', '0.01')
body BAYES_50 eval:check_bayes('0.40', '0.60')
body BAYES_99 eval:check_bayes('0.99', '1.00')
"""

SA_SCORER = r"""
use strict; use warnings;
use Mail::SpamAssassin;
my ($rules, $site, $prefs) = @ARGV;
my $sa = Mail::SpamAssassin->new({rules_filename => $rules, site_rules_filename => $site,
  userprefs_filename => $prefs, local_tests_only => 1, dont_copy_prefs => 1});
$sa->compile_now(0);
$| = 1;
while (my $path = <STDIN>) {
  chomp $path;
  open(my $fh, '<:raw', $path) or die "cannot read $path: $!";
  my $text = do { local $/; <$fh> };
  close $fh;
  my $mail = $sa->parse($text);
  my $status = $sa->check($mail);
  my $score = $status->{bayes_score};
  print defined $score ? sprintf("%.12g\n", $score) : "nan\n";
  $status->finish;
  $mail->finish;
}
"""


class SpamAssassinBayes(Peer):
    """SpamAssassin 4's Bayes classifier alone, trained with sa-learn."""

    name = "spamassassin"
    package = "spamassassin"
    executables = ("sa-learn", "perl")

    @classmethod
    def missing(cls) -> str | None:
        """Why SpamAssassin cannot run here, or None."""
        reason = super().missing()
        if reason is None and not Path("/usr/share/spamassassin/20_aux_tlds.cf").exists():
            reason = "SpamAssassin rules not found in /usr/share/spamassassin (apt-get install spamassassin)"
        return reason

    def _paths(self) -> tuple[Path, Path, Path]:
        if self.work_dir is None:
            raise RuntimeError("spamassassin: call fit() before scores()")
        return self.work_dir / "rules", self.work_dir / "site", self.work_dir / "prefs"

    def fit(self, examples: Sequence[LabelledComment]) -> SpamAssassinBayes:
        """Write a Bayes-only configuration, then `sa-learn --spam` and `--ham` the two mbox files."""
        work = self._fresh_dir()
        rules, site, prefs = self._paths()
        rules.mkdir()
        site.mkdir()
        prefs.write_text("")
        bayes = work / "bayes"
        bayes.mkdir()
        (rules / "bench.cf").write_text(SA_CONFIG.format(bayes_path=bayes / "bayes"))
        spam, ham = _split_by_label(examples)
        started = time.perf_counter()
        for flag, comments in (("--spam", spam), ("--ham", ham)):
            box = write_mbox(work / f"train{flag}.mbox", comments)
            result = _run(
                [
                    "sa-learn",
                    "-C",
                    str(rules),
                    "--siteconfigpath",
                    str(site),
                    "-p",
                    str(prefs),
                    "--dbpath",
                    str(bayes),
                    flag,
                    "--mbox",
                    str(box),
                ]
            )
            if result.returncode != 0:
                raise RuntimeError(f"sa-learn {flag} failed: {result.stderr.strip()}")
        self.fit_seconds = time.perf_counter() - started
        return self

    def scores(self, comments: Sequence[Comment]) -> np.ndarray:
        """Bayes probability of each comment (NaN if SpamAssassin gave none)."""
        rules, site, prefs = self._paths()
        assert self.work_dir is not None
        folder = self.work_dir / "score"
        folder.mkdir(exist_ok=True)
        names = []
        for number, comment in enumerate(comments):
            path = folder / f"{number}.eml"
            path.write_bytes(to_rfc822(comment))
            names.append(str(path))
        scorer = self.work_dir / "score.pl"
        scorer.write_text(SA_SCORER)
        result = _run(["perl", str(scorer), str(rules), str(site), str(prefs)], input="\n".join(names) + "\n")
        shutil.rmtree(folder, ignore_errors=True)
        values = [float(line) for line in result.stdout.split("\n") if line.strip()]
        if result.returncode != 0 or len(values) != len(comments):
            raise RuntimeError(
                f"spamassassin: expected {len(comments)} scores, found {len(values)}: {result.stderr.strip()[-500:]}"
            )
        return np.asarray(values, dtype=float)


PEERS: dict[str, type[Peer]] = {"bogofilter": Bogofilter, "spamassassin": SpamAssassinBayes}
