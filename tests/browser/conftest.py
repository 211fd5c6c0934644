"""Browser tests: Playwright for Python driving Debian's chromium against pytest-django's live server.

Never ``playwright install``: the browser is the system's ``/usr/bin/chromium`` (the ``chromium``
package; ``.ci/run`` installs it from ``.ci/system-packages``). Without it the tests skip with the
reason, and fail under TEST_REQUIRE_SERVICES (CI). Each test gets a fresh browser context on the live
server, and ``screenshot`` saves what the browser shows under ``test-output/<test name>/``.
"""

from __future__ import annotations

import functools
import os
import re
import threading
from collections.abc import Callable, Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.core.signals import request_started

from tests.support.missing_services import skip_or_fail

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
OUTPUT = Path(__file__).resolve().parents[2] / "test-output"
BROWSER_CLIENT = Path(__file__).resolve().parents[2] / "docs" / "browser-client"
TIMEOUT_MS = 15_000


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/browser is a browser test (``-m "not browser"`` leaves it out)."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        skip_or_fail(f"needs Debian's chromium at {CHROMIUM} (apt-get install chromium; .ci/run installs it)")
    return CHROMIUM


@pytest.fixture
def browser(chromium_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """A headless chromium for one test.

    Playwright's sync API runs an event loop in this thread, which Django's async-safety guard
    takes for async code; the test body's ORM calls are plain synchronous code, so the guard is
    lifted for the test's duration only.
    """
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(chromium_path), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser, live_server) -> Iterator[object]:
    """A page in a fresh browser context (no cookies) whose relative URLs go to the live server.

    Any Content-Security-Policy violation on any page the test visits fails the test: chromium's
    own console report, and the ``securitypolicyviolation`` event (an init script, which the page's
    policy does not govern, reports it to the console).
    """
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(TIMEOUT_MS)
    context.add_init_script(CSP_REPORTER)
    page = context.new_page()
    violations: list[str] = []
    page.on("console", lambda message: _csp_violation(message.text, page.url, violations))
    try:
        yield page
    finally:
        context.close()
    if violations:
        pytest.fail("Content-Security-Policy violations:\n" + "\n".join(violations))


CSP_REPORTER = """document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI || "inline"}`);
});"""


def _csp_violation(text: str, url: str, violations: list[str]) -> None:
    if "Content Security Policy" in text or text.startswith("CSP violation:"):
        violations.append(f"{url}: {text}")


@pytest.fixture
def screenshot(page, request: pytest.FixtureRequest) -> Callable[[str], Path]:
    """``screenshot("login")`` saves the whole page as test-output/<test name>/NN-login.png."""
    folder = OUTPUT / re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    taken: list[Path] = []

    def take(name: str) -> Path:
        path = folder / f"{len(taken) + 1:02d}-{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)}.png"
        page.screenshot(path=str(path), full_page=True)
        taken.append(path)
        return path

    return take


class _QuietStaticHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def browser_client_site() -> Iterator[Callable[[], str]]:
    """``browser_client_site()`` serves docs/browser-client on a new loopback port (a new origin)."""
    servers: list[ThreadingHTTPServer] = []

    def serve() -> str:
        handler = functools.partial(_QuietStaticHandler, directory=str(BROWSER_CLIENT))
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def requests_seen() -> Iterator[Callable[[str], list[str]]]:
    """``requests_seen(path)``: the methods of the requests Django received for ``path``, in order."""
    seen: list[tuple[str, str]] = []

    def record(sender: object, environ: dict, **kwargs: object) -> None:
        seen.append((environ["REQUEST_METHOD"], environ["PATH_INFO"]))

    request_started.connect(record, weak=False)
    yield lambda path: [method for method, seen_path in seen if seen_path == path]
    request_started.disconnect(record)
