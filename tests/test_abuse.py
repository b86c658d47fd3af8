"""Abuse resistance: rate limits (memory and Redis), login lockout over HTTP, secrets kept out of logs and
the database, the production secret-key guard, and model artifacts verified before anything is unpickled."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import secrets
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import MetaData, func, select

from benchmarks.live_server import MODERATION, serve, service_env
from moderation.errors import ConfigError, ModelIntegrityError
from moderation.settings import DEFAULT_SECRET_KEY
from moderation.store.schema import CommentRecord, LabelRecord
from moderation.store.sites import create_site, hash_key
from moderation.store.users import create_user
from moderation.web.app import create_app

sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
PASSWORD = "correct horse battery staple"
HAM = {"content": "Thanks for the write-up, the second chart cleared it up for me."}


def _app(db_url: str, tmp_path: Path, **settings):
    return create_app(
        {"TESTING": True, "DATABASE_URL": db_url, "MODEL_DIR": str(tmp_path / "models"), "INSTANCE_PATH": str(tmp_path)}
        | settings
    )


def _key(app) -> str:
    with app.extensions["moderation"].sessions() as session:
        return create_site(session, f"Blog {uuid.uuid4().hex[:6]}")[1]


def _check(client, key: str, ip: str, *, header: str | None = None):
    return client.post(
        "/api/v1/comments/check",
        json=HAM,
        headers={"Authorization": header or f"Bearer {key}"},
        environ_base={"REMOTE_ADDR": ip},
    )


def _limits(app):
    return app.extensions["moderation"].limits


def _signed_check(client, site, site_id_text: str, ip: str):
    from moderation.web.api import signature

    body = json.dumps(HAM).encode()
    stamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "X-Moderation-Site": site_id_text,
        "X-Moderation-Timestamp": stamp,
        "X-Moderation-Signature": signature(site.signing_secret, stamp, body),
    }
    return client.post("/api/v1/comments/check", data=body, headers=headers, environ_base={"REMOTE_ADDR": ip})


# Twelve spellings of one Authorization header that authentication accepts (the scheme is case-insensitive,
# the key is stripped); Flask-Limiter had counted each as a key of its own.
SPELLINGS = [
    "Bearer {k}", "bearer {k}", "BEARER {k}", "BeArEr {k}", "bEARER {k}", "Bearer  {k}", "bearer   {k}",
    "Bearer {k} ", "BEARER  {k}  ", "bearer {k}\t", "Bearer \t{k}", "BEARER {k}   ",
]  # fmt: skip


# --- Rate limits -----------------------------------------------------------------------------------------


@sqlite_only
def test_one_site_has_one_budget_however_its_credentials_are_spelled(db_url, tmp_path):
    """Twelve spellings of the Bearer header, signed requests naming the site as 1, 01 and 001, and the Akismet key
    in body, path and Host, from a new address each time, share one site budget (5 answered, the rest 429)."""
    app = _app(db_url, tmp_path, RATELIMIT_SITE="5/minute")
    with app.extensions["moderation"].sessions() as session:
        site, key = create_site(session, "Blog")
    client = app.test_client()
    statuses = [_check(client, key, f"192.0.2.{n}", header=spelling.format(k=key)).status_code
                for n, spelling in enumerate(SPELLINGS, start=1)]  # fmt: skip
    statuses += [_signed_check(client, site, text, f"198.51.100.{n}").status_code
                 for n, text in enumerate(("1", "01", "001"), start=1)]  # fmt: skip
    form = {"blog": "https://blog.example", "user_ip": "203.0.113.7", "comment_content": "hi"}
    statuses += [
        client.post("/1.1/comment-check", data={**form, "api_key": key}).status_code,
        client.post(f"/k/{key}/1.1/comment-check", data=form).status_code,
        client.post("/1.1/comment-check", data=form, headers={"Host": f"{key}.rest.akismet.example"}).status_code,
    ]
    assert statuses == [200] * 5 + [429] * 13, statuses


@sqlite_only
def test_every_endpoint_that_writes_spends_the_site_budget(db_url, tmp_path):
    """Checks, feedback, Akismet comment-check, submit-spam and submit-ham all spend one budget; reads spend none."""
    app = _app(db_url, tmp_path, RATELIMIT_SITE="4/minute")
    client = app.test_client()
    key = _key(app)
    headers = {"Authorization": f"Bearer {key}"}
    checked = client.post("/api/v1/comments/check", json=HAM, headers=headers)
    comment_id = checked.get_json()["id"]
    form = {"api_key": key, "blog": "https://blog.example", "user_ip": "203.0.113.7", "comment_content": "Cheap pills"}
    spent = [
        checked.status_code,
        client.post(f"/api/v1/comments/{comment_id}/feedback", json={"label": "ham"}, headers=headers).status_code,
        client.post("/1.1/comment-check", data=form).status_code,
        client.post("/1.1/submit-spam", data=form).status_code,
    ]
    assert spent == [200, 200, 200, 200]
    refused = [
        client.post("/1.1/submit-ham", data=form),
        client.post("/1.1/submit-spam", data=form),
        client.post(f"/api/v1/comments/{comment_id}/feedback", json={"label": "spam"}, headers=headers),
        client.post("/api/v1/comments/check", json=HAM, headers=headers),
    ]
    assert [r.status_code for r in refused] == [429] * 4
    assert all(int(r.headers["Retry-After"]) > 0 for r in refused)
    assert refused[2].get_json()["error"]["code"] == "rate_limited"
    assert client.get(f"/api/v1/comments/{comment_id}", headers=headers).status_code == 200
    assert client.post("/1.1/verify-key", data={"key": key}).get_data(as_text=True) == "valid"
    with app.extensions["moderation"].sessions() as session:  # nothing refused was stored or labelled
        # two checks (submit-spam labelled the Akismet one, found by its text and author), two labels
        assert session.scalar(select(func.count()).select_from(CommentRecord)) == 2
        assert session.scalar(select(func.count()).select_from(LabelRecord)) == 2


@sqlite_only
def test_the_default_budget_lets_a_busy_site_check_200_comments_at_once(db_url, tmp_path):
    """With the default MODERATION_RATELIMIT_SITE, 200 quick checks from one site's server all pass (the old
    default, 120/minute per key and per IP, refused every check after the 120th)."""
    app = _app(db_url, tmp_path)
    client = app.test_client()
    key = _key(app)
    statuses = [_check(client, key, "203.0.113.10").status_code for _ in range(200)]
    assert statuses.count(200) == 200, statuses.count(429)


@sqlite_only
def test_a_site_can_have_a_budget_of_its_own(db_url, tmp_path):
    """A site's `rate_limit` setting overrides MODERATION_RATELIMIT_SITE for that site alone."""
    app = _app(db_url, tmp_path, RATELIMIT_SITE="3/minute")
    client = app.test_client()
    small = _key(app)
    with app.extensions["moderation"].sessions() as session:
        _, big = create_site(session, "Busy news site", settings={"rate_limit": "10/minute"})
    assert [_check(client, small, "192.0.2.1").status_code for _ in range(4)] == [200, 200, 200, 429]
    assert [_check(client, big, "192.0.2.1").status_code for _ in range(11)] == [200] * 10 + [429]


@sqlite_only
def test_failed_authentications_use_up_an_address_budget(db_url, tmp_path):
    """Past MODERATION_RATELIMIT_FAILED_AUTH failures (bad keys, API or Akismet) an address gets 429 even with a
    good key, so its answers stop telling keys apart; other addresses are served."""
    app = _app(db_url, tmp_path, RATELIMIT_FAILED_AUTH="3/minute")
    client = app.test_client()
    key = _key(app)
    guesser = {"REMOTE_ADDR": "192.0.2.66"}
    failures = [
        client.post("/api/v1/comments/check", json=HAM, headers={"Authorization": "Bearer guess1"},
                    environ_base=guesser).status_code,
        client.post("/1.1/verify-key", data={"key": "guess2"}, environ_base=guesser).get_data(as_text=True),
        client.post("/1.1/comment-check", data={"api_key": "guess3"}, environ_base=guesser).get_data(as_text=True),
    ]  # fmt: skip
    assert failures == [403, "invalid", "invalid"]
    blocked = _check(client, key, "192.0.2.66")
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0
    akismet = client.post("/1.1/comment-check", data={"api_key": key}, environ_base=guesser)
    assert akismet.status_code == 429
    assert _check(client, key, "192.0.2.67").status_code == 200


@sqlite_only
def test_rate_limit_counts_are_shared_through_redis(db_url, tmp_path):
    """With MODERATION_RATELIMIT_STORAGE_URL=redis://, two app instances (two workers) share one site budget."""
    redis_url = os.environ.get("MODERATION_TEST_REDIS_URL")
    if not redis_url:
        pytest.skip("Redis not configured: set MODERATION_TEST_REDIS_URL")
    first = _app(db_url, tmp_path, RATELIMIT_SITE="4/minute", RATELIMIT_STORAGE_URL=redis_url)
    second = _app(db_url, tmp_path, RATELIMIT_SITE="4/minute", RATELIMIT_STORAGE_URL=redis_url)
    assert type(_limits(first).storage).__name__ == "RedisStorage"
    key = _key(first)  # a fresh site: its budget's name holds a piece of its random key's hash
    net = secrets.randbelow(250) + 1
    ips = [f"10.{net}.{secrets.randbelow(250)}.{n}" for n in range(6)]
    one, two = first.test_client(), second.test_client()
    statuses = [_check(client, key, ip).status_code for client, ip in zip([one, two, one, two, one], ips, strict=False)]
    assert statuses == [200, 200, 200, 200, 429]
    assert _check(two, key, ips[5]).status_code == 429


def test_limits_live_in_memory_by_default(db_url, tmp_path):
    """Without a storage URL each worker counts in memory."""
    app = _app(db_url, tmp_path)
    assert type(_limits(app).storage).__name__ == "MemoryStorage"


# --- Login lockout over real HTTP ------------------------------------------------------------------------


def _csrf(client: httpx.Client) -> str:
    import re

    page = client.get("/review/login").text
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match
    return match.group(1)


def _login(client: httpx.Client, name: str, password: str) -> httpx.Response:
    return client.post("/review/login", data={"username": name, "password": password, "csrf_token": _csrf(client)})


@pytest.mark.slow
@sqlite_only
def test_login_lockout_and_secrets_never_logged_over_http(db_url, tmp_path):
    """Through a real gunicorn with access logs on: five bad logins lock the account (even the right password
    then gets 429), and no API key or password ever appears in the server's output."""
    engine_app = _app(db_url, tmp_path)
    sessions = engine_app.extensions["moderation"].sessions
    with sessions() as session:
        create_user(session, "alice", PASSWORD, role="admin")
    key = _key(engine_app)
    engine_app.extensions["moderation"].engine.dispose()
    env = service_env(tmp_path, db_url, tmp_path / "models", SECRET_KEY=secrets.token_hex(16))
    with serve(env, tmp_path / "server.log", access_log=True) as server:
        bearer = {"Authorization": f"Bearer {key}"}
        assert httpx.post(f"{server.base}/api/v1/comments/check", json=HAM, headers=bearer).status_code == 200
        form = {"api_key": key, "blog": "https://blog.example", "user_ip": "203.0.113.7", "comment_content": "hello"}
        assert httpx.post(f"{server.base}/1.1/comment-check", data=form).status_code == 200
        assert httpx.post(f"{server.base}/k/{key}/1.1/verify-key", data={}).text == "valid"
        assert httpx.post(f"{server.base}/1.1/verify-key?key={key}", data={}).text == "valid"
        # percent-encoded spellings the server decodes and accepts: the log must hide them too
        for encoded in (f"?%6Bey={key}", f"?api%5Fkey={key}", f"/%6B/{key}"):
            encoded = f"/1.1/verify-key{encoded}" if encoded.startswith("?") else f"{encoded}/1.1/verify-key"
            assert httpx.post(f"{server.base}{encoded}", data={}).text == "valid", encoded
        with httpx.Client(base_url=server.base) as browser:
            for attempt in range(5):
                assert _login(browser, "alice", f"wrong password {attempt}").status_code == 401
            locked = _login(browser, "alice", PASSWORD)
            assert locked.status_code == 429 and "locked" in locked.text
            assert browser.get("/review/").status_code == 302  # still not logged in
        with httpx.Client(base_url=server.base) as other_browser:  # a new session, maybe another worker
            assert _login(other_browser, "Alice", PASSWORD).status_code == 429
        log = server.log()
    assert "POST /api/v1/comments/check" in log  # the access log is on and we read it
    for secret in (key, PASSWORD, "wrong password 0"):
        assert secret not in log, f"{secret!r} appears in the server output"


@pytest.mark.parametrize(
    "line",
    ["POST /k/{k}/1.1/verify-key HTTP/1.1", "POST /%6B/{k}/1.1/comment-check HTTP/1.1",
     "POST /k%2F{k}/1.1/verify-key HTTP/1.1", "POST /1.1/verify-key?%6Bey={k} HTTP/1.1",
     "POST /1.1/comment-check?blog=x&api%5Fkey={k} HTTP/1.1", "GET /1.2/usage-limit?%61%70%69%5f%6b%65%79={k}&a=1",
     "key={k}&blog=x", "https://rest.example/k/{k}/1.1/test"],
)  # fmt: skip
def test_access_log_lines_hide_keys_in_every_spelling(line):
    """The access log's request line, path, query and referer hide a key however its name or slash is encoded."""
    from moderation.web.serving import redact_url

    key = "abcdef123456"
    redacted = redact_url(line.format(k=key)) if not line.startswith("key=") else redact_url("?" + line.format(k=key))
    assert key not in redacted and "***" in redacted


def test_secrets_never_reach_python_logging(db_url, tmp_path, caplog):
    """Creating a site, checking with good and bad keys and logging in (right, wrong) log no key or password."""
    caplog.set_level(logging.DEBUG)
    app = _app(db_url, tmp_path, RATELIMIT_SITE="")
    app.config["WTF_CSRF_ENABLED"] = False
    key = _key(app)
    with app.extensions["moderation"].sessions() as session:
        create_user(session, "bob", PASSWORD)
    client = app.test_client()
    client.post("/api/v1/comments/check", json=HAM, headers={"Authorization": f"Bearer {key}"})
    client.post("/api/v1/comments/check", json=HAM, headers={"Authorization": "Bearer not-a-real-key-zz9"})
    client.post("/1.1/comment-check", data={"api_key": key, "comment_content": "hi"})
    client.post("/review/login", data={"username": "bob", "password": "wrong guess 12345"})
    client.post("/review/login", data={"username": "bob", "password": PASSWORD})
    logged = "\n".join(f"{r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in caplog.records)
    for secret in (key, PASSWORD, "wrong guess 12345", "not-a-real-key-zz9"):
        assert secret not in logged


def test_cli_prints_the_key_once_and_stores_only_its_hash(db_url, tmp_path):
    """`moderation sites add` shows the key once; the database holds its SHA-256 and nowhere the plaintext."""
    from moderation.cli import main

    env = {"MODERATION_DATABASE_URL": db_url, "MODERATION_INSTANCE_PATH": str(tmp_path)}
    result = CliRunner().invoke(main, ["sites", "add", "Blog"], env=env)
    assert result.exit_code == 0, result.output
    key = next(line.split()[-1] for line in result.output.splitlines() if line.startswith("api key:"))
    assert len(key) == 12
    app = _app(db_url, tmp_path)
    engine = app.extensions["moderation"].engine
    metadata = MetaData()
    metadata.reflect(engine)
    found_hash = False
    with engine.connect() as connection:
        for table in metadata.sorted_tables:
            for row in connection.execute(select(table)):
                text = " ".join(str(value) for value in row)
                assert key not in text, f"plaintext key stored in {table.name}"
                found_hash |= hash_key(key) in text
    assert found_hash and hash_key(key) == hashlib.sha256(key.encode()).hexdigest()
    if db_url.startswith("sqlite"):  # also the raw file and its WAL, in case a value were stored oddly
        for path in Path(tmp_path).glob("moderation.sqlite3*"):
            assert key.encode() not in path.read_bytes()


# --- Production secret-key guard ---------------------------------------------------------------------------


@sqlite_only
@pytest.mark.parametrize("secret", [DEFAULT_SECRET_KEY, ""])
def test_production_refuses_default_or_empty_secret_key(db_url, tmp_path, secret):
    """MODERATION_ENV=production with the built-in or an empty secret key refuses to build the app."""
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        _app(db_url, tmp_path, ENV="production", SECRET_KEY=secret)
    _app(db_url, tmp_path, ENV="production", SECRET_KEY=secrets.token_hex(32))  # a real key is fine


@sqlite_only
def test_serve_in_production_with_default_key_exits_with_one_line(db_url, tmp_path):
    """`moderation serve` in production with the default key exits non-zero naming the setting, before listening."""
    env = {**os.environ, **service_env(tmp_path, db_url, tmp_path / "models", ENV="production")}
    env.pop("MODERATION_SECRET_KEY", None)
    result = subprocess.run(
        [MODERATION, "serve", "--port", "1"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode != 0
    assert "MODERATION_SECRET_KEY" in result.stderr and "Traceback" not in result.stderr


# --- Model artifacts verified before unpickling ---------------------------------------------------------


class _Booby:
    """Unpickling this calls Path.touch on the marker: proof that a pickle was executed."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _evil_artifact(marker: Path) -> bytes:
    return pickle.dumps(_Booby(marker))


def test_tampered_artifact_is_never_unpickled(model_dir, tmp_path):
    """An artifact replaced by a code-running pickle is refused on its hash; the marker file never appears."""
    from moderation.core.model_store import current_version, load_model

    marker = tmp_path / "unpickled.marker"
    version = current_version(model_dir)
    (model_dir / f"{version}.joblib").write_bytes(_evil_artifact(marker))
    with pytest.raises(ModelIntegrityError, match="SHA-256"):
        load_model(model_dir)
    assert not marker.exists()
    # The control: the same bytes do run code when unpickled, so the test would notice a missing check.
    pickle.loads(_evil_artifact(tmp_path / "control.marker"))
    assert (tmp_path / "control.marker").exists()


def test_tampered_artifact_served_app_holds_and_never_unpickles(db_url, tmp_path, model_dir, site_key, app):
    """The running app facing a tampered artifact holds comments, /readyz says why, the pickle never runs."""
    from moderation.core.model_store import current_version

    marker = tmp_path / "served.marker"
    (model_dir / f"{current_version(model_dir)}.joblib").write_bytes(_evil_artifact(marker))
    holder = app.extensions["moderation"].models
    holder._checked_at = float("-inf")  # force the reload a worker does every MODEL_RELOAD_SECONDS
    holder._model = None
    client = app.test_client()
    answer = client.post("/api/v1/comments/check", json=HAM, headers={"Authorization": f"Bearer {site_key}"})
    assert answer.status_code == 200 and answer.get_json()["decision"] == "hold"
    ready = client.get("/readyz")
    assert ready.status_code == 503 and "SHA-256" in ready.get_json()["error"]["message"]
    assert not marker.exists()


def test_tampered_registry_bytes_are_never_unpickled(db_session, model_dir, tmp_path):
    """Artifact bytes altered in the database registry are refused on their hash before reaching any model folder."""
    from moderation.core.model_store import current_version
    from moderation.store import registry
    from moderation.store.schema import ModelArtifact

    version = current_version(model_dir)
    registry.register(db_session, model_dir, version)
    registry.promote(db_session, version)
    marker = tmp_path / "registry.marker"
    db_session.get(ModelArtifact, version).content = _evil_artifact(marker)
    db_session.commit()
    other_host = tmp_path / "other-host-models"
    with pytest.raises(ModelIntegrityError, match="SHA-256"):
        registry.fetch_artifact(db_session, version, other_host)
    assert not marker.exists() and not list(other_host.glob("*.joblib"))


@sqlite_only
def test_rate_limit_storage_down_fails_open(db_url, tmp_path):
    """With the Redis limit store unreachable, checks are still answered (availability first; see threat model)."""
    app = _app(db_url, tmp_path, RATELIMIT_SITE="2/minute", RATELIMIT_STORAGE_URL="redis://127.0.0.1:9/0")
    client = app.test_client()
    key = _key(app)
    assert [_check(client, key, "192.0.2.1").status_code for _ in range(3)] == [200, 200, 200]


@pytest.mark.slow
@sqlite_only
def test_huge_chunked_bodies_are_not_read_into_memory(db_url, tmp_path):
    """10 MiB sent chunked (no Content-Length) to the JSON and Akismet endpoints of a real gunicorn is cut off at
    MAX_CONTENT_LENGTH: a quick 4xx or Akismet's "invalid", never a 5xx, and the worker keeps serving."""
    key = _key(_app(db_url, tmp_path))
    env = service_env(tmp_path, db_url, tmp_path / "models", SECRET_KEY=secrets.token_hex(16))

    def ten_mebibytes():
        for _ in range(160):
            yield b"x" * 65536

    with serve(env, tmp_path / "server.log", workers=1) as server:
        workers = server.workers()
        for path, content_type in (
            ("/api/v1/comments/check", "application/json"),
            ("/1.1/comment-check", "application/x-www-form-urlencoded"),
        ):
            headers = {"Authorization": f"Bearer {key}", "Content-Type": content_type}
            response = httpx.post(server.base + path, content=ten_mebibytes(), headers=headers, timeout=30)
            assert response.status_code in (400, 413) or response.text == "invalid", (path, response.status_code)
            assert response.elapsed.total_seconds() < 5
        assert httpx.get(f"{server.base}/healthz").status_code == 200 and server.workers() == workers


def test_threat_model_names_only_existing_tests():
    """Every `tests/file.py::name` in docs/threat-model.md is a test that exists (the document stays honest)."""
    import re

    root = Path(__file__).resolve().parent.parent
    text = (root / "docs" / "threat-model.md").read_text(encoding="utf-8")
    current, named, missing = None, 0, []
    for match in re.finditer(r"`(tests/[\w/]+\.py)?::(\w+)", text):
        current = match.group(1) or current
        named += 1
        if f"def {match.group(2)}(" not in (root / str(current)).read_text(encoding="utf-8"):
            missing.append(f"{current}::{match.group(2)}")
    assert named > 30 and missing == []
    assert "docs/threat-model.md" in (root / "README.md").read_text(encoding="utf-8")


def test_database_password_never_appears_in_errors_or_logs(tmp_path, caplog):
    """An unreachable PostgreSQL URL with a password: the app error, the CLI and `serve` never print the password."""
    from moderation.errors import StoreError

    caplog.set_level(logging.DEBUG)
    url = "postgresql+psycopg://moderation:s3cret-db-pw@127.0.0.1:1/moderation"
    with pytest.raises(StoreError) as raised:
        _app(url, tmp_path)
    assert "s3cret-db-pw" not in str(raised.value) and "s3cret-db-pw" not in caplog.text
    env = {**os.environ, **service_env(tmp_path, url, tmp_path / "models")}
    for command in (["sites", "list"], ["serve", "--port", "1"]):
        result = subprocess.run(
            [MODERATION, *command], env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode != 0 and "s3cret-db-pw" not in result.stdout + result.stderr


@pytest.mark.slow
@sqlite_only
def test_redis_limit_holds_across_real_gunicorn_workers(db_url, tmp_path):
    """Two gunicorn workers with Redis limit storage grant one key exactly its budget, whichever worker answers."""
    redis_url = os.environ.get("MODERATION_TEST_REDIS_URL")
    if not redis_url:
        pytest.skip("Redis not configured: set MODERATION_TEST_REDIS_URL")
    key = _key(_app(db_url, tmp_path))
    limit = "5/minute"  # a fresh site: its budget's name holds a piece of its random key's hash
    env = service_env(tmp_path, db_url, tmp_path / "models", RATELIMIT_SITE=limit, RATELIMIT_STORAGE_URL=redis_url)
    with serve(env, tmp_path / "server.log", workers=2) as server:
        statuses = []
        for _ in range(12):  # a new connection each time, so both workers take turns
            response = httpx.post(
                f"{server.base}/api/v1/comments/check", json=HAM, headers={"Authorization": f"Bearer {key}"}
            )
            statuses.append(response.status_code)
    assert statuses.count(200) == 5 and statuses.count(429) == 7, statuses
