"""Browser-test harness: the real app served by werkzeug in a thread on a SQLite file, Debian's Chromium
driven by Playwright, a recorder of dialogs and console errors, screenshots into test-artifacts/."""

from __future__ import annotations

from pathlib import Path

import pytest
from browser_helpers import ARTIFACTS, CHROMIUM, LiveServer, PageWatch, launch_chromium


@pytest.fixture(scope="session")
def browser():
    """One headless Debian Chromium for the session (skips when it is not installed)."""
    if not CHROMIUM.exists():
        pytest.skip("Debian's Chromium is not installed at /usr/bin/chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = launch_chromium(playwright)
        yield launched
        launched.close()


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
