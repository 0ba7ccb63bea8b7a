"""The system Chromium under Playwright, for the tests of web pages (the Dagster UI, the review page).

Chromium is a system package (`bash scripts/install_chromium.sh`); without it these tests fail, they do not
skip.
"""

from __future__ import annotations

import shutil

import pytest

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-sync",
    "--disable-background-networking",
    "--disable-component-update",
]


@pytest.fixture(scope="module")
def chromium() -> str:
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.fail(
            "Chromium is not installed (no `chromium` on PATH): run `bash scripts/install_chromium.sh` "
            "(apt-get install chromium)",
            pytrace=False,
        )
    return executable


@pytest.fixture(scope="module")
def browser(chromium: str):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright is missing: .venv/bin/python -m pip install -e '.[dev]'", pytrace=False)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()
