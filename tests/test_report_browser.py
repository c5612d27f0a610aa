"""The report in a real browser: Debian's Chromium, headless, driven by Playwright (which
downloads no browser of its own here). Screenshots of every page, in the light and the dark
theme, are kept in build/report-screenshots/ for review."""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from tests.conftest import Cli, require_program
from tests.test_report import HOSTILE, NOW, seeded

SessionFactory = Callable[[], AbstractContextManager[Session]]
SCREENSHOTS = Path(__file__).resolve().parent.parent / "build" / "report-screenshots"
CHROMIUM_FLAGS = [  # a closed network: no background fetches (DEVELOPERS' machine notes)
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = pytest.mark.slow


def playwright() -> object:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail("playwright is not installed (the dev extra has it)")
        pytest.skip("playwright is not installed: pip install -e '.[dev]'")
    return sync_playwright


def test_every_page_loads_cleanly_in_chromium_with_content_in_every_chart(
    cli: Cli, session: SessionFactory, tmp_path: Path, db_url: str
) -> None:
    chromium = require_program("chromium", "chromium")
    sync_playwright = playwright()
    seeded(cli, session, tmp_path, "fraud", "churn", hostile=True)
    out = tmp_path / "site"
    result = cli("report", "--out", str(out), "--now", NOW.isoformat())
    assert result.exit_code == 0, result.output
    assert len(list(out.glob("*.html"))) == 4
    backend = db_url.split(":")[0].split("+")[0]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as driver:  # type: ignore[operator]
        browser = driver.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        try:
            for scheme in ("light", "dark"):
                browse(browser, scheme, out, backend)
        finally:
            browser.close()


def browse(browser: Any, scheme: str, out: Path, backend: str) -> None:
    """Every page in one colour scheme: no console message, no page error, no failed request,
    nothing fetched but the report's own files; every chart drawn; a screenshot each."""
    page = browser.new_page(color_scheme=scheme, viewport={"width": 1200, "height": 900})
    problems: list[str] = []
    requested: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}"))
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    page.on("request", lambda r: requested.append(r.url))
    pages = sorted(out.glob("*.html"))
    for path in pages:
        response = page.goto(path.as_uri())
        assert response is not None and response.ok
        charts = page.locator("figure svg")
        if path.name != "index.html":
            assert charts.count() == 4, path.name
        for i in range(charts.count()):
            chart = charts.nth(i)
            assert chart.locator("path, image").count() > 5
            box = chart.bounding_box()
            assert box is not None and box["width"] > 300 and box["height"] > 100
        page.screenshot(
            path=str(SCREENSHOTS / f"{backend}-{path.stem[:40]}-{scheme}.png"), full_page=True
        )
    # the model named with a <script> element shows it as text and never runs it
    page.goto(next(p for p in pages if "script" in p.name).as_uri())
    assert page.locator("h1").inner_text() == HOSTILE
    assert page.evaluate("window.pwned") is None
    # the index links to every model's page, and a failed run's point to its error
    page.goto((out / "index.html").as_uri())
    assert page.locator("table a").count() == 3
    page.locator("table a", has_text="fraud-model").click()
    page.locator("figure svg a").first.click()
    assert "training data has 3 rows" in page.locator("tr:target").inner_text()
    assert problems == []
    assert all(url.startswith("file://") for url in requested), requested
    page.close()
