"""The real server and a real browser for the end-to-end tests.

- ``server`` (session): ``trdnav demo`` loads the demo patients and users into a fresh SQLite
  database, then ``trdnav serve`` runs as a subprocess on a free port with a fixed today. Its log
  is attached to the report of every failing browser test.
- ``browser`` (session): Debian's Chromium (``/usr/bin/chromium``, see ``.ci/ensure-browser``).
- ``web`` (per test): opens contexts (signed in through the sign-in form once per user, then
  reused), watches every page for JavaScript errors, CSP violations and unexpected failed
  loads — any of them fails the test — and saves screenshots as
  ``out/screenshots/<test>-<step>.png``.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Playwright,
    sync_playwright,
)

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "out" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
TODAY = "2024-06-01"  # the demo's and the server's today: the examples are dated for it
PASSWORD = "demo-clinician-2026"  # the demo users' published password (trdnav demo)
DESKTOP = {"width": 1280, "height": 900}
TABLET = {"width": 820, "height": 1180}
PHONE = {"width": 390, "height": 844}
STARTUP_SECONDS = 30
TIMEOUT_MS = 10_000

# Reports every CSP violation to the console by name (Chromium also logs its own message).
CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (e) => {
  console.error("CSP violation: " + e.violatedDirective + " blocked " + (e.blockedURI || "inline"));
});
"""
FAILED_LOAD = re.compile(r"^Failed to load resource: the server responded with a status of (\d+)")
SERVER_KEY = pytest.StashKey["Server"]()


@dataclass
class Server:
    url: str
    log: Path
    process: subprocess.Popen[bytes]

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def _trdnav() -> list[str]:
    script = Path(sys.executable).with_name("trdnav")
    return [str(script)] if script.exists() else [sys.executable, "-m", "trdnav"]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/signin", timeout=1) as response:  # noqa: S310
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture(scope="session")
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("e2e")
    database = f"sqlite:///{tmp / 'e2e.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRDNAV_")}
    env["TRDNAV_DEV"] = "1"
    log = tmp / "server.log"
    demo = subprocess.run(
        [*_trdnav(), "demo", "--database-url", database, "--today", TODAY],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if demo.returncode != 0:
        pytest.fail(f"trdnav demo failed ({demo.returncode}):\n{demo.stdout}\n{demo.stderr}")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    out = log.open("wb")
    process = subprocess.Popen(
        [*_trdnav(), "serve", "--database-url", database, "--port", str(port), "--today", TODAY],
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    running = Server(url, log, process)
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not _answers(url):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    f"trdnav serve did not answer on {url} (exit {process.poll()}):\n"
                    + running.log_text()
                )
            time.sleep(0.1)
        request.config.stash[SERVER_KEY] = running
        yield running
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        out.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failing browser test's report carries the server's log."""
    report = yield
    running = item.config.stash.get(SERVER_KEY, None)
    if report.failed and running is not None:
        report.sections.append(("trdnav serve log", running.log_text()[-20_000:]))
    return report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """Problems the browser reported during a test fail that test (not only its teardown);
    if the test failed anyway, they go into its report."""
    web = getattr(item, "funcargs", {}).get("web")
    try:
        yield
    except BaseException:
        if isinstance(web, Web) and web.problems:
            item.add_report_section("call", "browser problems", "\n".join(web.problems))
            web.problems.clear()
        raise
    if isinstance(web, Web):
        web.fail_on_problems()


@pytest.fixture(scope="session")
def playwright_driver() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `bash .ci/ensure-browser` (as root)")
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    launched = playwright_driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield launched
    launched.close()


@pytest.fixture(scope="session")
def signed_in_states() -> dict[str, Any]:
    """Storage state (the session cookie) per demo user, filled on first use."""
    return {}


@dataclass
class Web:
    """The browser side of one test: its contexts, their problems, its screenshots."""

    browser: Browser
    server: Server
    test_name: str
    states: dict[str, Any]
    problems: list[str] = field(default_factory=list)
    allowed_failures: set[tuple[str, int]] = field(default_factory=set)
    contexts: list[BrowserContext] = field(default_factory=list)

    def allow_failed_load(self, path: str, status: int) -> None:
        """A response the test expects to fail (e.g. the 401 of a wrong password)."""
        self.allowed_failures.add((path, status))

    def context(
        self, user: str | None = "clinician", viewport: dict[str, int] | None = None
    ) -> BrowserContext:
        """A new browser context (no cookies of the others), signed in as ``user`` if given."""
        ctx = self.browser.new_context(
            base_url=self.server.url,
            viewport=viewport or DESKTOP,  # type: ignore[arg-type]
            accept_downloads=True,
            storage_state=self._state(user) if user else None,
        )
        ctx.set_default_timeout(TIMEOUT_MS)
        ctx.add_init_script(CSP_LISTENER)
        ctx.on("page", self._watch)
        self.contexts.append(ctx)
        return ctx

    def page(self, user: str | None = "clinician", viewport: dict[str, int] | None = None) -> Page:
        return self.context(user, viewport).new_page()

    def shot(self, page: Page, step: str, full_page: bool = False) -> Path:
        path = SCREENSHOTS / f"{self.test_name}-{step}.png"
        page.wait_for_function("() => Array.from(document.images).every((i) => i.complete)")
        page.screenshot(path=str(path), full_page=full_page)
        return path

    def _state(self, user: str) -> Any:
        if user not in self.states:
            ctx = self.browser.new_context(base_url=self.server.url)
            try:
                page = ctx.new_page()
                sign_in(page, user)
                page.wait_for_url("**/patients")
                self.states[user] = ctx.storage_state()
            finally:
                ctx.close()
        return self.states[user]

    def _watch(self, page: Page) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(f"JavaScript error: {error}"))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        failed = FAILED_LOAD.match(message.text)
        if failed:
            path = urllib.parse.urlsplit(message.location.get("url", "")).path
            if path == "/favicon.ico" or (path, int(failed.group(1))) in self.allowed_failures:
                return
            self.problems.append(f"{message.text} — {message.location.get('url')}")
            return
        self.problems.append(f"console error: {message.text}")

    def fail_on_problems(self) -> None:
        problems, self.problems = self.problems, []
        if problems:
            pytest.fail("the browser reported problems:\n" + "\n".join(problems), pytrace=False)

    def close(self) -> None:
        for ctx in self.contexts:
            ctx.close()


def sign_in(page: Page, user: str, password: str = PASSWORD) -> None:
    """Fill and submit the sign-in form (does not wait for where it lands)."""
    page.goto("/signin")
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


@pytest.fixture
def web(
    request: pytest.FixtureRequest,
    browser: Browser,
    server: Server,
    signed_in_states: dict[str, Any],
) -> Iterator[Web]:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name.removeprefix("test_")).strip("-")
    w = Web(browser, server, name, signed_in_states)
    yield w
    w.close()
    w.fail_on_problems()
