"""`moderation datasets fetch`: download, verify, refuse bad archives, fail offline with one line."""

from __future__ import annotations

import hashlib
import io
import socket
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from moderation.cli import main
from moderation.core.datasets import DATASETS, Dataset, fetch, sha256_file
from moderation.errors import DatasetFetchError


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for name, data in members.items():
            bundle.writestr(name, data)
    return buffer.getvalue()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _Server:
    """A real HTTP server on 127.0.0.1 serving fixed bytes per path and counting requests."""

    def __init__(self) -> None:
        self.routes: dict[str, bytes] = {}
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                body = server.routes.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/zip")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + path


@pytest.fixture
def server() -> Iterator[_Server]:
    """A local HTTP server running in a thread for the duration of one test."""
    running = _Server()
    thread = threading.Thread(target=running.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield running
    running.httpd.shutdown()
    running.httpd.server_close()


@pytest.fixture
def closed_port() -> int:
    """A local TCP port with nothing listening on it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_fetch_downloads_extracts_and_verifies(server: _Server, tmp_path: Path) -> None:
    """A good archive is extracted into dest/<name>/ and the verified paths are returned."""
    server.routes["/corpus.zip"] = _zip({"corpus/a.csv": b"alpha", "b.txt": b"beta", "__MACOSX/._a.csv": b"junk"})
    dataset = Dataset("tiny", server.url("/corpus.zip"), {"a.csv": _sha(b"alpha"), "b.txt": _sha(b"beta")})
    paths = fetch(tmp_path, datasets=[dataset], timeout=5)
    assert paths == [tmp_path / "tiny" / "a.csv", tmp_path / "tiny" / "b.txt"]
    assert (tmp_path / "tiny" / "a.csv").read_bytes() == b"alpha"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny"]  # no scratch folder left behind


def test_fetch_skips_a_dataset_that_already_verifies(server: _Server, tmp_path: Path) -> None:
    """A second fetch finds the verified files and does not download again."""
    server.routes["/corpus.zip"] = _zip({"a.csv": b"alpha"})
    dataset = Dataset("tiny", server.url("/corpus.zip"), {"a.csv": _sha(b"alpha")})
    fetch(tmp_path, datasets=[dataset], timeout=5)
    fetch(tmp_path, datasets=[dataset], timeout=5)
    assert server.requests == ["/corpus.zip"]


def test_fetch_refuses_a_checksum_mismatch(server: _Server, tmp_path: Path) -> None:
    """A file whose SHA-256 differs from the recorded one is refused and nothing is installed."""
    server.routes["/corpus.zip"] = _zip({"a.csv": b"tampered"})
    dataset = Dataset("tiny", server.url("/corpus.zip"), {"a.csv": _sha(b"alpha")})
    with pytest.raises(DatasetFetchError, match=r"a\.csv failed verification: expected SHA-256 [0-9a-f]{64}, found"):
        fetch(tmp_path, datasets=[dataset], timeout=5)
    assert list(tmp_path.iterdir()) == []


def test_fetch_replaces_a_corrupted_local_copy(server: _Server, tmp_path: Path) -> None:
    """A local file that no longer verifies is downloaded again and replaced."""
    server.routes["/corpus.zip"] = _zip({"a.csv": b"alpha"})
    (tmp_path / "tiny").mkdir()
    (tmp_path / "tiny" / "a.csv").write_bytes(b"edited by hand")
    fetch(tmp_path, datasets=[Dataset("tiny", server.url("/corpus.zip"), {"a.csv": _sha(b"alpha")})], timeout=5)
    assert (tmp_path / "tiny" / "a.csv").read_bytes() == b"alpha"


def test_fetch_offline_fails_with_one_line(closed_port: int, tmp_path: Path) -> None:
    """When nothing answers, the error is one line naming the URL and the reason."""
    url = f"http://127.0.0.1:{closed_port}/corpus.zip"
    with pytest.raises(DatasetFetchError) as caught:
        fetch(tmp_path, datasets=[Dataset("tiny", url, {"a.csv": _sha(b"alpha")})], timeout=5)
    message = str(caught.value)
    assert message.startswith(f"cannot download {url}: ")
    assert "\n" not in message
    assert not (tmp_path / "tiny").exists()


def test_fetch_reports_http_errors(server: _Server, tmp_path: Path) -> None:
    """A 404 from the publisher becomes 'cannot download URL: HTTP 404'."""
    url = server.url("/gone.zip")
    with pytest.raises(DatasetFetchError, match=r"cannot download .*/gone\.zip: HTTP 404"):
        fetch(tmp_path, datasets=[Dataset("tiny", url, {"a.csv": _sha(b"alpha")})], timeout=5)


def test_fetch_refuses_a_non_zip_and_a_missing_member(server: _Server, tmp_path: Path) -> None:
    """An HTML page instead of a zip, or a zip without an expected file, is refused clearly."""
    server.routes["/page.zip"] = b"<html>maintenance</html>"
    server.routes["/partial.zip"] = _zip({"other.csv": b"x"})
    with pytest.raises(DatasetFetchError, match="expected a zip archive"):
        fetch(tmp_path, datasets=[Dataset("t", server.url("/page.zip"), {"a.csv": _sha(b"a")})], timeout=5)
    with pytest.raises(DatasetFetchError, match=r"archive has no file named a\.csv"):
        fetch(tmp_path, datasets=[Dataset("t", server.url("/partial.zip"), {"a.csv": _sha(b"a")})], timeout=5)


def test_fetch_ignores_paths_inside_the_archive(server: _Server, tmp_path: Path) -> None:
    """A member named ../../x lands in dest/<name>/x: paths in the zip never choose where we write."""
    server.routes["/slip.zip"] = _zip({"../../escape.csv": b"alpha"})
    dest = tmp_path / "dest"
    fetch(dest, datasets=[Dataset("tiny", server.url("/slip.zip"), {"escape.csv": _sha(b"alpha")})], timeout=5)
    assert (dest / "tiny" / "escape.csv").read_bytes() == b"alpha"
    assert not (tmp_path / "escape.csv").exists()


def test_cli_fetch_offline_prints_one_line_and_exits_non_zero(closed_port: int, tmp_path: Path) -> None:
    """`moderation datasets fetch` with no route to the publisher exits 1 with one 'Error:' line."""
    proxy = f"http://127.0.0.1:{closed_port}"
    env = {"HTTPS_PROXY": proxy, "HTTP_PROXY": proxy, "ALL_PROXY": proxy, "NO_PROXY": "", "no_proxy": ""}
    result = CliRunner().invoke(main, ["datasets", "fetch", "--dest", str(tmp_path / "data")], env=env)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("Error: cannot download https://archive.ics.uci.edu/static/public/380/")


@pytest.mark.corpora
def test_cli_fetch_reports_verified_files(corpora_dir: Path, tmp_path: Path) -> None:
    """With every file already in place and verified, the command lists them without downloading."""
    dest = tmp_path / "data"
    for dataset in DATASETS:
        (dest / dataset.name).mkdir(parents=True)
        for name in dataset.files:
            (dest / dataset.name / name).write_bytes((corpora_dir / dataset.name / name).read_bytes())
    result = CliRunner().invoke(
        main, ["datasets", "fetch", "--dest", str(dest)], env={"HTTPS_PROXY": "http://127.0.0.1:9"}
    )
    assert result.exit_code == 0, result.output
    assert result.output.count("verified ") == 7
    assert f"MODERATION_DATA_DIR={dest}" in result.output


@pytest.mark.corpora
def test_recorded_hashes_match_the_shared_corpora(corpora_dir: Path) -> None:
    """The SHA-256 constants are those of the unmodified public files."""
    for dataset in DATASETS:
        for name, digest in dataset.files.items():
            assert sha256_file(corpora_dir / dataset.name / name) == digest, name
