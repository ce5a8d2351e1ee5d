"""The process's bounds on work in progress, in the app's own middleware: requests past the
in-flight limit and large bodies past the body budget get 503 with Retry-After at once, health
probes keep a reserve, and a body reaches the application as one message."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from services.api.limits import SMALL_BODY, BodySizeLimit
from services.api.overload import PROBE_RESERVE, InFlightLimit


class Held:
    """An application that answers once released, recording the body messages it read."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.started = 0
        self.messages: list[list[dict[str, Any]]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        messages = []
        if scope["method"] == "POST":
            while True:
                message = await receive()
                messages.append(message)
                if not message.get("more_body"):
                    break
        self.messages.append(messages)
        self.started += 1
        if scope["path"] != "/healthz":
            await self.release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def until(condition: Any) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met")


def test_requests_past_the_in_flight_limit_get_503_and_probes_still_answer() -> None:
    async def run() -> None:
        held = Held()
        app = InFlightLimit(held, limit=2)
        async with client(app) as http:
            admitted = [asyncio.create_task(http.get(f"/v1/x{i}")) for i in range(2)]
            await until(lambda: held.started == 2)
            shed = await http.get("/v1/y")
            assert shed.status_code == 503
            assert shed.headers["retry-after"] == "1"
            assert shed.json()["error"]["code"] == "overloaded"
            probes = await asyncio.gather(*(http.get("/healthz") for _ in range(PROBE_RESERVE)))
            assert [p.status_code for p in probes] == [200] * PROBE_RESERVE
            held.release.set()
            assert [(await t).status_code for t in admitted] == [200, 200]
            assert (await http.get("/v1/z")).status_code == 200

    asyncio.run(run())


def test_large_bodies_past_the_budget_get_503_small_ones_pass() -> None:
    async def run() -> None:
        held = Held()
        app = BodySizeLimit(held, limit=8 * SMALL_BODY, budget=3 * SMALL_BODY)
        large = b"x" * (2 * SMALL_BODY)
        async with client(app) as http:
            first = asyncio.create_task(http.post("/v1/a", content=large))
            await until(lambda: held.started == 1)
            refused = await http.post("/v1/b", content=large)
            assert refused.status_code == 503, refused.text
            assert refused.headers["retry-after"] == "1"
            assert refused.headers["connection"] == "close"
            assert refused.json()["error"]["code"] == "overloaded"
            small = asyncio.create_task(http.post("/v1/c", content=b"y" * 1000))
            await until(lambda: held.started == 2)
            held.release.set()
            assert (await first).status_code == 200 and (await small).status_code == 200
            assert (await http.post("/v1/d", content=large)).status_code == 200  # budget back

    asyncio.run(run())


def test_a_streamed_body_reaches_the_application_as_one_message() -> None:
    async def run() -> None:
        held = Held()
        held.release.set()

        async def chunks() -> Any:
            for _ in range(64):
                yield b"z" * 4096

        async with client(BodySizeLimit(held, limit=SMALL_BODY)) as http:
            assert (await http.post("/v1/e", content=chunks())).status_code == 200
            too_large = await http.post("/v1/f", content=b"z" * (SMALL_BODY + 1))
            assert too_large.status_code == 413
            assert too_large.headers["connection"] == "close"
        (messages,) = held.messages
        assert len(messages) == 1 and messages[0]["body"] == b"z" * 4096 * 64
        assert messages[0]["more_body"] is False

    asyncio.run(run())
