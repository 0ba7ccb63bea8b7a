"""Screenshot a Dagster UI page in headless Chromium (the system's), for the docs.

Usage: python scripts/screenshot_ui.py URL OUT.png [--click TEXT ...] [--height PX]
Dismisses Dagster's first-visit community dialog, optionally clicks tabs by their
text, and waits for the page to settle before taking the picture. A URL that is a
markdown file (a report: exports/compare/v1_vs_v2/report.md) is rendered to HTML
beside it first (its images are relative to it).
"""

import argparse
import shutil

from playwright.sync_api import sync_playwright

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def screenshot(url: str, out: str, clicks: list[str], width: int = 1500, height: int = 1800) -> None:
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        raise SystemExit("chromium not found: apt-get install chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": width, "height": height})
        page.goto(url, wait_until="networkidle")
        skip = page.get_by_role("button", name="Skip")
        if skip.count():
            skip.first.click()
        for text in clicks:
            page.get_by_text(text, exact=True).first.click()
            page.wait_for_load_state("networkidle")
        page.wait_for_timeout(1500)
        page.screenshot(path=out, full_page=True)
        browser.close()


STYLE = (
    "body{font-family:sans-serif;max-width:1400px;margin:24px;font-size:13px}"
    "table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:2px 6px}"
    "img{max-width:460px;display:inline-block;margin:4px}"
)


def markdown_page(path: str) -> str:
    """A markdown file rendered to an HTML file beside it; its file:// URL."""
    from pathlib import Path

    from markdown_it import MarkdownIt

    source = Path(path).absolute()
    html = MarkdownIt("commonmark").enable("table").render(source.read_text())
    page = source.with_suffix(".html")
    page.write_text(f"<html><head><meta charset='utf-8'><style>{STYLE}</style></head><body>{html}</body></html>")
    return page.as_uri()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("out")
    parser.add_argument("--click", action="append", default=[], help="click the element with this exact text")
    parser.add_argument("--height", type=int, default=1800)
    args = parser.parse_args()
    url = markdown_page(args.url) if args.url.endswith(".md") else args.url
    screenshot(url, args.out, args.click, height=args.height)
