"""Real-browser tests: Playwright driving Debian's chromium against ``live_server``.

CI installs the browser with ``apt-get install -y chromium``; Playwright's own browser
download is never used. Without the browser these tests fail (they never skip).
"""

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "e2e"

# Playwright's sync API keeps an asyncio loop running in this thread; the test's own ORM calls
# (factories, assertions) are still plain synchronous code, which Django must be told to allow.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

# Reports each CSP violation to the test, on every page, before any page script runs.
CSP_LISTENER = """
document.addEventListener('securitypolicyviolation', (e) => {
  window.__reportCsp(`${e.violatedDirective} blocked ${e.blockedURI || 'inline'} at ${e.sourceFile}:${e.lineNumber}`);
});
"""


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: install it with `apt-get install -y chromium`"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


class Problems:
    """Console errors, page errors and CSP violations seen by a page."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def assert_none(self) -> None:
        assert self.items == [], "\n".join(self.items)


def _open_page(browser, base_url: str, problems: Problems, **context_options):
    context = browser.new_context(base_url=base_url, **context_options)
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.expose_function("__reportCsp", lambda text: problems.items.append(f"CSP: {text}"))
    page.add_init_script(CSP_LISTENER)
    page.on(
        "console", lambda msg: problems.items.append(f"console.{msg.type}: {msg.text}") if msg.type == "error" else None
    )
    page.on("response", lambda r: problems.items.append(f"HTTP {r.status} {r.url}") if r.status >= 400 else None)
    page.on("pageerror", lambda exc: problems.items.append(f"pageerror: {exc}"))
    return page


@pytest.fixture
def problems() -> Problems:
    return Problems()


@pytest.fixture
def page(browser, live_server, problems):
    page = _open_page(browser, live_server.url, problems, viewport={"width": 1280, "height": 900})
    yield page
    page.context.close()


@pytest.fixture
def phone(browser, live_server, problems):
    page = _open_page(
        browser, live_server.url, problems, viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True
    )
    yield page
    page.context.close()


@pytest.fixture
def shot(request):
    """``shot(page, "name")`` saves a full-page screenshot under artifacts/e2e/."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    prefix = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")

    def take(page, name: str) -> Path:
        path = ARTIFACTS / f"{prefix}--{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
