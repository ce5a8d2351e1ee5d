"""The console in a real headless Chromium against a real API and worker: sign in, drop a
file, watch it reach done over the event stream, open its chunks, ask an unrelated question
and see "nothing relevant"; the analytics and keys pages draw. Any console error, page
error or failed request fails the test. Screenshots are kept under test-artifacts/console/.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest

from services.runtime import Runtime
from tests.support.browser import LAUNCH_ARGS, artifacts_dir, chromium_path
from tests.support.cluster import start_api
from tests.support.processes import stop
from tests.support.waiting import wait_for
from workers import space_driver

pytestmark = pytest.mark.usefixtures("worker")

# a URL of another origin (the SVG namespace is a name, never fetched)
OUTSIDE = re.compile(r"(https?:)?//(?!www\.w3\.org/2000/svg)[a-z0-9.-]+\.[a-z]{2,}", re.I)

BROKEN_PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> broken beyond repair"
HANDBOOK = (
    "Harbour handbook 🚢⚓ (characters beyond the BMP: chunk offsets count code points)\n\n"
    + "The ferry to the north island leaves the harbour at seven every morning. "
    + "Tickets are sold at the kiosk by the pier and cost four euros. " * 30
    + "\n\nIn winter storms the harbour master may cancel crossings; notices are posted "
    + "at the pier an hour before departure. " * 20
)


@pytest.fixture(scope="module")
def server(service_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    env = {**service_env, "GROUNDWIRE_EVENTS_HEARTBEAT_S": "1"}
    api, url = start_api(env, tmp_path_factory.mktemp("console") / "api.log")
    yield url
    stop(api)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = chromium_path()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable, headless=True, args=LAUNCH_ARGS
        )
        yield launched
        launched.close()


class Problems:
    """What went wrong in the page: console errors, uncaught errors, failed requests."""

    def __init__(self, page: Any) -> None:
        self.seen: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.seen.append(f"page error: {error}"))
        page.on("requestfailed", self._failed)
        page.on("response", self._response)

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.seen.append(f"console error: {message.text}")

    def _failed(self, request: Any) -> None:
        # a stream the console closes on leaving a page is aborted on purpose
        if request.failure == "net::ERR_ABORTED" and request.url.endswith("/events"):
            return
        self.seen.append(f"request failed: {request.method} {request.url}: {request.failure}")

    def _response(self, response: Any) -> None:
        if response.status >= 400:
            self.seen.append(f"{response.status}: {response.request.method} {response.url}")


def test_a_user_signs_in_uploads_watches_browses_and_asks(
    server: str, browser: Any, admin_headers: dict[str, str], service_env: dict[str, str]
) -> None:
    shots = artifacts_dir("console")
    name = f"console-{uuid.uuid4().hex[:6]}"
    made = httpx.post(
        f"{server}/v1/collections", json={"name": name, "embedder": "hash"}, headers=admin_headers
    )
    assert made.status_code == 201, made.text
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems = Problems(page)
    page.set_default_timeout(30_000)

    try:
        walk_through(page, server, name, service_env, shots)
    except Exception:
        page.screenshot(path=str(shots / "failure.png"), full_page=True)
        raise
    finally:
        context.close()
    assert problems.seen == []


def walk_through(
    page: Any, server: str, name: str, service_env: dict[str, str], shots: Any
) -> None:
    page.goto(f"{server}/")
    page.wait_for_selector("#sign-in-form")
    page.screenshot(path=str(shots / "1-sign-in.png"))
    page.fill("#key", service_env["GROUNDWIRE_ADMIN_KEY"])
    page.click("#sign-in-form button[type=submit]")
    page.wait_for_selector(f"a[href='#/c/{name}']")
    stored = page.evaluate("() => sessionStorage.getItem('groundwire.key')")
    assert stored == service_env["GROUNDWIRE_ADMIN_KEY"]
    assert page.evaluate("() => document.cookie") == ""  # the key is in no cookie
    assert service_env["GROUNDWIRE_ADMIN_KEY"] not in page.url
    page.screenshot(path=str(shots / "2-collections.png"), full_page=True)

    page.click(f"a[href='#/c/{name}']")
    page.wait_for_selector("#drop")
    page.wait_for_selector("#activity[data-live=true]", state="attached")  # stream is open
    # drop a file on the drop zone, as a user dragging it from their desktop would
    page.evaluate(
        """([text]) => {
            const transfer = new DataTransfer();
            transfer.items.add(new File([text], "handbook.txt", { type: "text/plain" }));
            const zone = document.getElementById("drop");
            for (const type of ["dragover", "drop"]) {
                zone.dispatchEvent(new DragEvent(type, { dataTransfer: transfer, bubbles: true }));
            }
        }""",
        [HANDBOOK],
    )
    page.wait_for_selector(".batch[data-finished=true]", timeout=90_000)
    assert "1 of 1 (1 done" in page.inner_text(".batch")
    page.wait_for_selector("#activity .badge.done", timeout=30_000)  # the live event stream
    page.wait_for_selector("#documents .badge.done")
    page.wait_for_selector("#counts [data-status=done]:text('1')")
    page.screenshot(path=str(shots / "3-uploaded-and-done.png"), full_page=True)

    # a file that cannot be parsed shows up among the failures; retrying it is seen live
    page.set_input_files(
        "#file-input",
        files=[{"name": "broken.pdf", "mimeType": "application/pdf", "buffer": BROKEN_PDF}],
    )
    page.wait_for_selector("#failures a:text('broken.pdf')", timeout=90_000)
    assert "parse" in page.inner_text("#failures")
    failed_events = "#activity div:has(a:text('broken.pdf')) .badge.failed"
    page.wait_for_selector(failed_events)
    before = page.locator(failed_events).count()
    page.click("#failures tr:has(a:text('broken.pdf')) button:text('Retry')")
    page.wait_for_function(
        "before => [...document.querySelectorAll('#activity > div')].filter((row) =>"
        " row.textContent.includes('broken.pdf') && row.querySelector('.badge.failed'))"
        ".length > before",
        arg=before,
        timeout=90_000,
    )  # queued, processing and failed again, each as it happened
    page.screenshot(path=str(shots / "4-failure-retried.png"), full_page=True)

    page.click("#documents a:text('handbook.txt')")
    page.wait_for_selector("#text mark")
    marks = page.locator("#text mark").count()
    rows = page.locator("#chunks tbody tr").count()
    assert marks >= 2 and rows == marks, (marks, rows)
    assert "ferry to the north island" in page.inner_text("#text")
    first = page.locator("#chunk-0").text_content() or ""
    offsets = page.inner_text("#chunks tbody tr:first-child td:nth-child(2)")
    start, end = (int(n) for n in offsets.split("\u2013"))  # an en dash
    assert first == HANDBOOK[start:end]  # code points, as the server counts them
    page.wait_for_selector("#download")
    page.screenshot(path=str(shots / "5-document-chunks.png"), full_page=True)

    page.go_back()
    page.wait_for_selector("#question")
    page.fill("#question", "What is the boiling point of liquid nitrogen on Jupiter?")
    page.click("#search")
    page.wait_for_selector("#nothing-relevant")
    assert "Nothing relevant" in page.inner_text("#nothing-relevant")
    page.screenshot(path=str(shots / "6-nothing-relevant.png"), full_page=True)

    page.fill(
        "#question", "Where are the tickets sold, and what do they cost at the kiosk by the pier?"
    )
    page.click("#search")
    page.wait_for_selector("#grounded.grounded")
    page.wait_for_selector(
        "#answer-out svg line.threshold", state="attached"
    )  # scores against the threshold
    page.screenshot(path=str(shots / "7-grounded-scores.png"), full_page=True)
    page.click("#answer-out a:text('open passage')")
    page.wait_for_selector("#text mark.focus")

    page.click("nav a[href='#/analytics']")
    page.wait_for_selector("#gaps")
    assert page.locator("main svg").count() == 3
    assert "boiling point of liquid nitrogen" in page.inner_text("#gaps")
    page.screenshot(path=str(shots / "8-analytics.png"), full_page=True)

    page.click("nav a[href='#/keys']")
    page.wait_for_selector("#new-key-form")
    page.fill("#key-name", "console-made")
    page.select_option("#key-scope", "read")
    page.click("#new-key-form button[type=submit]")
    page.wait_for_selector("#new-key .secret")
    assert page.inner_text("#new-key .secret").startswith("gw_")
    page.wait_for_selector("#keys td:text('console-made')")
    page.wait_for_selector("#webhooks h2")
    page.screenshot(path=str(shots / "9-keys.png"), full_page=True)


def test_a_migration_is_watched_and_activated(
    server: str,
    browser: Any,
    admin_headers: dict[str, str],
    service_env: dict[str, str],
    runtime: Runtime,
) -> None:
    """The collection page shows a migration building, then ready with its thresholds; its
    Activate button switches the collection, whose summary then shows the new embedder."""
    shots = artifacts_dir("console")
    name = f"console-m-{uuid.uuid4().hex[:6]}"
    http = httpx.Client(base_url=server, headers=admin_headers, timeout=30)
    assert http.post("/v1/collections", json={"name": name, "embedder": "hash"}).status_code == 201
    docs = [{"id": f"d{i}", "text": f"Note {i} on the harbour ferry."} for i in range(5)]
    batch = http.post(f"/v1/collections/{name}/documents", json={"documents": docs}).json()
    wait_for(lambda: http.get(f"/v1/batches/{batch['batch_id']}").json()["finished"], 60)
    started = http.post(f"/v1/collections/{name}/migrations", json={"embedder": "hash:128"})
    assert started.status_code == 202, started.text
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems = Problems(page)
    page.set_default_timeout(30_000)
    ticks = ExitStack()
    try:
        page.goto(f"{server}/")
        page.fill("#key", service_env["GROUNDWIRE_ADMIN_KEY"])
        page.click("#sign-in-form button[type=submit]")
        page.wait_for_selector(f"a[href='#/c/{name}']").click()
        page.wait_for_selector("#migrations .badge.building")
        ticks.enter_context(space_driver.ticking(runtime))  # the build starts once it shows
        page.wait_for_selector("#migrations .badge.ready", timeout=60_000)
        page.screenshot(path=str(shots / "9-migration-ready.png"), full_page=True)
        page.click("#migrations button[data-action=activate]")
        page.wait_for_selector("#migrations .badge.active")
        page.wait_for_selector("#summary :text('hash:128')")
        page.screenshot(path=str(shots / "10-migration-active.png"), full_page=True)
    except Exception:
        page.screenshot(path=str(shots / "failure.png"), full_page=True)
        raise
    finally:
        ticks.close()
        context.close()
        http.close()
    assert problems.seen == []


def test_a_refused_key_stays_on_the_sign_in_form(server: str, browser: Any) -> None:
    page = browser.new_page()
    page.goto(f"{server}/")
    page.fill("#key", "gw_not_a_key")
    page.click("#sign-in-form button[type=submit]")
    page.wait_for_selector("#sign-in-error:text('refused')")
    assert page.evaluate("() => sessionStorage.getItem('groundwire.key')") is None
    page.close()


def test_the_console_loads_nothing_from_elsewhere(server: str) -> None:
    page = httpx.get(f"{server}/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy
    assert not OUTSIDE.search(page.text)
    assets = ("console.js", "api.js", "dom.js", "charts.js", "links.js", "document.js",
              "analytics.js", "keys.js", "console.css", "favicon.svg")  # fmt: skip
    for asset in assets:
        served = httpx.get(f"{server}/console/{asset}")
        assert served.status_code == 200, asset
        assert not OUTSIDE.search(served.text), asset
