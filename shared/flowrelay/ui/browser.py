"""Headless Chromium, for the real-browser check of the UI (``scripts/ui_screenshots.py`` and
the UI's browser test): finding it, and loading a page of the UI with its scripts run, for a
screenshot or the page as the browser made it.

Chromium is told to reach nothing but this machine: every host name resolves to nothing except
127.0.0.1 and localhost, and its own background traffic (updates, sync, metrics) is off.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

#: Where Chromium comes from when it is missing.
INSTALL_CHROMIUM = (
    "headless Chromium is needed: on Debian or Ubuntu `sudo apt-get install chromium`, on "
    "macOS `brew install --cask chromium`; or set CHROMIUM to a Chrome or Chromium binary"
)
_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
_LOOPBACK_ONLY = [
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
    "--no-proxy-server",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--disable-breakpad",
    "--metrics-recording-only",
    "--no-first-run",
    "--no-default-browser-check",
    "--safebrowsing-disable-auto-update",
]


def find_chromium() -> str | None:
    """The Chromium (or Chrome) binary: ``CHROMIUM``, else the first on the PATH."""
    named = os.environ.get("CHROMIUM")
    if named:
        return named if shutil.which(named) else None
    return next((found for name in _NAMES if (found := shutil.which(name))), None)


def _command(chromium: str, profile: str, *extra: str) -> list[str]:
    command = [
        chromium,
        "--headless=new",
        "--disable-gpu",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        # The page's polls and its first fragments (the log) load in virtual time.
        "--virtual-time-budget=4000",
        *_LOOPBACK_ONLY,
        *extra,
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.insert(1, "--no-sandbox")  # Chromium refuses to run as root with its sandbox
    return command


def screenshot(chromium: str, url: str, path: Path, width: int = 1400, height: int = 1000) -> None:
    """Save a PNG of ``url`` as the browser shows it, its scripts run."""
    with tempfile.TemporaryDirectory(prefix="flowrelay-chromium-") as profile:
        subprocess.run(
            _command(
                chromium, profile, f"--window-size={width},{height}", f"--screenshot={path}", url
            ),
            check=True,
            capture_output=True,
            timeout=60,
        )


def rendered_dom(chromium: str, url: str) -> str:
    """The page at ``url`` as the browser made it (its scripts run): its serialized DOM."""
    with tempfile.TemporaryDirectory(prefix="flowrelay-chromium-") as profile:
        done = subprocess.run(
            _command(chromium, profile, "--dump-dom", url),
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        )
    return done.stdout
