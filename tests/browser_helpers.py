"""What every browser test shares: Debian's Chromium launched by Playwright, the app on a real socket, and a
recorder of what a page did that it should not have (dialogs, console errors)."""

from __future__ import annotations

import threading
from pathlib import Path

from werkzeug.serving import make_server

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
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


def launch_chromium(playwright):
    """Debian's Chromium, headless, through Playwright (which cannot download its own build here)."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


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
