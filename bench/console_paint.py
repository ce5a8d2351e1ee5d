"""How fast the console draws: time to first paint and to its data on screen, for `/` and for
the page of a collection of 1,000 done documents, in Debian's headless Chromium.

    .venv/bin/python -m bench.console_paint [--documents 1000] [--repeats 7]

One API process (`python -m services.serve`) on an embedded PostgreSQL and one worker with the
hash embedder. Each load is a fresh browser context with the key already in session storage
(as after signing in), so it measures the page, its scripts and its API calls, not typing.
"first paint" is the browser's first-contentful-paint; "drawn" is when the page's data is on
screen (the collections table; the collection's documents list), checked on every animation
frame inside the page.
Medians of `--repeats` loads, after one warm-up load of each page.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import httpx
from playwright.sync_api import sync_playwright

from bench.api_process import HEADERS, make_collection, running_api, services
from bench.common import ADMIN_KEY, start_workers, stop_workers
from tests.support.browser import LAUNCH_ARGS, chromium_path


def load(browser: Any, url: str, drawn: str, breakdown: bool = False) -> tuple[float, float]:
    """(first contentful paint, data drawn) in ms from navigation start; with `breakdown`,
    prints when each request of the load began and ended."""
    context = browser.new_context()
    context.add_init_script(f"sessionStorage.setItem('groundwire.key', {ADMIN_KEY!r})")
    page = context.new_page()
    page.goto(url)
    # checked on every frame in the page: the moment the data is there, not when this
    # process hears of it
    page.wait_for_function(
        "selector => { const found = document.querySelector(selector);"
        " if (found && !window.drawnAt) window.drawnAt = performance.now(); return !!found; }",
        arg=drawn,
        polling="raf",
        timeout=60_000,
    )
    done = page.evaluate("() => window.drawnAt")
    paint = page.evaluate(
        "() => (performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime"
    )
    if breakdown:
        entries = page.evaluate(
            "() => performance.getEntriesByType('resource')"
            ".map(e => [e.name, e.startTime, e.responseEnd])"
        )
        for name, start, end in entries:
            print(f"    {start:7.0f} → {end:7.0f} ms  {name.split('/', 3)[-1]}")
    context.close()
    return float(paint or 0.0), float(done)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--documents", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--breakdown", action="store_true", help="print each load's requests")
    args = parser.parse_args()
    with services() as (env, logs), running_api("serve", env, logs) as api:
        workers = start_workers(1, env, concurrency=2)
        try:
            name = make_collection(api)
            for start in range(0, args.documents, 500):
                docs = [
                    {"id": f"doc-{n:05d}", "title": f"Record {n}",
                     "text": f"Record {n}: the harbour log of day {n}, tides and ferries."}
                    for n in range(start, min(args.documents, start + 500))
                ]  # fmt: skip
                httpx.post(
                    f"{api.url}/v1/collections/{name}/documents",
                    json={"documents": docs}, headers=HEADERS, timeout=60,
                ).raise_for_status()  # fmt: skip
            began = time.monotonic()
            while True:
                counts = httpx.get(f"{api.url}/v1/collections/{name}", headers=HEADERS).json()
                if counts["documents"]["done"] == args.documents:
                    break
                if time.monotonic() - began > 300:
                    raise SystemExit(f"documents not done after 300 s: {counts['documents']}")
                time.sleep(0.5)
        finally:
            stop_workers(workers)
        pages = {
            "/": (f"{api.url}/", f"a[href='#/c/{name}']"),
            f"collection of {args.documents} documents": (
                f"{api.url}/#/c/{name}",
                "#documents tbody tr",
            ),
        }
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=chromium_path(), headless=True, args=LAUNCH_ARGS
            )
            print(
                f"{'page':<34} {'first paint ms':>15} {'drawn ms':>10}  (median of {args.repeats})"
            )
            for label, (url, drawn) in pages.items():
                load(browser, url, drawn)  # warm-up
                runs = [load(browser, url, drawn) for _ in range(args.repeats)]
                paint = statistics.median(r[0] for r in runs)
                done = statistics.median(r[1] for r in runs)
                print(f"{label:<34} {paint:>15.0f} {done:>10.0f}")
                if args.breakdown:
                    load(browser, url, drawn, breakdown=True)
            browser.close()


if __name__ == "__main__":
    main()
