"""Browser-test harness: the real app served by werkzeug in a thread on a SQLite file, Debian's Chromium
driven by Playwright, a recorder of dialogs and console errors, screenshots into test-artifacts/."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser():
    """One headless Debian Chromium for the session (skips when it is not installed)."""
    if not CHROMIUM.exists():
        pytest.skip("Debian's Chromium is not installed at /usr/bin/chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class LiveServer:
    """The app on a real socket: `url`, plus its `app` and `sessions` for seeding and checking the DB."""

    def __init__(self, app):
        self.app = app
        self.sessions = app.extensions["moderation"].sessions
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> LiveServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        worker = self.app.extensions.get("review_webhooks")
        if worker is not None:
            worker.stop()
        self.app.extensions["moderation"].engine.dispose()


@pytest.fixture
def live_server(tmp_path):
    """A real HTTP server for a fresh app on a SQLite file in tmp_path."""
    from moderation.web.app import create_app

    (tmp_path / "models").mkdir()
    app = create_app(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'moderation.sqlite3'}",
            "MODEL_DIR": str(tmp_path / "models"),
            "INSTANCE_PATH": str(tmp_path),
            "CALLBACK_ALLOW_PRIVATE": True,  # the callback receiver listens on loopback
        }
    )
    server = LiveServer(app).start()
    yield server
    server.stop()


class PageWatch:
    """What the page did that it should not have: dialogs (alert/confirm) and console errors (CSP included)."""

    def __init__(self, page):
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        page.on("dialog", self._dialog)
        page.on("console", lambda msg: self.errors.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def _dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()


@pytest.fixture
def context(browser):
    """A fresh browser context (cookies, storage) per test, laptop-sized."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    yield ctx
    ctx.close()


@pytest.fixture
def page(context):
    """A page with a PageWatch attached as `page.watch`."""
    new_page = context.new_page()
    new_page.watch = PageWatch(new_page)
    new_page.set_default_timeout(10_000)
    return new_page


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """The folder for screenshots (git-ignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
