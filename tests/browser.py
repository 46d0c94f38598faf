"""Headless Chromium for the page-rendering tests (Debian package ``chromium``; `.ci/run`
installs it, elsewhere the tests that need it are skipped with a message)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


def chromium_or_skip() -> str:
    """The Chromium binary; skips the calling test when none is installed."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("chromium not found: install it with `apt-get install chromium`")


def dump_dom(page: Path, profile: Path, *, budget_ms: int = 3000,
             file_access: bool = False) -> str:
    """The DOM of ``page`` after its scripts ran for ``budget_ms`` of virtual time."""
    cmd = [chromium_or_skip(), "--headless", "--no-sandbox", "--disable-gpu",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--no-first-run", "--disable-dev-shm-usage", f"--user-data-dir={profile}"]
    if file_access:
        cmd.append("--allow-file-access-from-files")
    cmd += [f"--virtual-time-budget={budget_ms}", "--dump-dom", page.as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0 and "<html" in proc.stdout, proc.stderr[-2000:]
    return proc.stdout
