"""Headless Chromium from the system's packages (installed here when missing), driven by Playwright.

Nothing downloads a browser: Playwright is pointed at /usr/bin/chromium. Screenshots of every page
land in test-artifacts/screenshots/ (kept by CI as an artefact, ignored by git).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.e2e.conftest import start_mesh  # noqa: F401  (the real mesh fixture, shared)

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
APT_PACKAGES = ("chromium", "chromium-driver")


def ensure_chromium() -> Path:
    """The system Chromium; installed with apt-get (as root) when it is not there yet."""
    if CHROMIUM.exists():
        return CHROMIUM
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.fail(f"{CHROMIUM} is missing; install it with: apt-get install -y {' '.join(APT_PACKAGES)}")
    subprocess.run(["apt-get", "update"], check=True, capture_output=True, timeout=600)
    subprocess.run(["apt-get", "install", "-y", *APT_PACKAGES], check=True, capture_output=True, timeout=1200,
                   env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    return CHROMIUM


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    # Module scope, not session: Playwright's sync API keeps its own event loop marked running on this
    # thread while it is open, and the asyncio tests that follow need the thread to themselves again.
    from playwright.sync_api import sync_playwright

    executable = ensure_chromium()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(executable), args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()
