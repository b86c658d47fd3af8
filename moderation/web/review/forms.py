"""Reading the site-settings form into the JSON that `policy.SiteSettings` validates.

Empty threshold fields mean "use the model's own"; lists are one entry per line. Values are passed on
as typed data; `sites.update_settings` runs `SiteSettings.from_dict` before anything is stored, so the
policy stays the one place that decides what is valid.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

THRESHOLDS = ("hold", "spam", "discard")
NUMBERS = {"max_links": int, "min_seconds_to_submit": float}
LISTS = ("blocklist", "allowlist")
MAX_LIST_LINES = 5000


def parse_settings(form: Mapping[str, str]) -> tuple[dict[str, Any], list[str]]:
    """The settings changes in a submitted form, and what was wrong with it (empty when fine)."""
    changes: dict[str, Any] = {}
    errors: list[str] = []
    for name in THRESHOLDS:
        raw = form.get(name, "").strip()
        if not raw:
            changes[name] = None
            continue
        try:
            changes[name] = float(raw)
        except ValueError:
            errors.append(f"{name} threshold: expected a number from 0 to 1, found {raw!r}")
    for name, kind in NUMBERS.items():
        raw = form.get(name, "").strip()
        if raw:
            try:
                changes[name] = kind(raw)
            except ValueError:
                errors.append(f"{name.replace('_', ' ')}: expected a number, found {raw!r}")
    changes["honeypot"] = form.get("honeypot") == "on"
    for name in LISTS:
        lines = [line.strip() for line in form.get(name, "").splitlines() if line.strip()]
        if len(lines) > MAX_LIST_LINES:
            errors.append(f"{name}: expected at most {MAX_LIST_LINES} lines, found {len(lines)}")
        changes[name] = lines[:MAX_LIST_LINES]
    return changes, errors


def parse_callback_url(raw: str) -> tuple[str, str | None]:
    """The callback URL to store ("" clears it) and an error, or None when it is usable."""
    url = raw.strip()
    if not url:
        return "", None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return url, f"callback URL: expected an http:// or https:// address, found {url!r}"
    if len(url) > 500:
        return url, f"callback URL: expected at most 500 characters, found {len(url)}"
    return url, None
