"""`groundwire ingest` on folders, against a real API and worker: every supported file goes,
ids never collide, one bad file never aborts the run, and --sync removes what is gone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import files
from tests.support.cluster import admin_headers, start_api
from tests.support.processes import stop
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("worker")]


@pytest.fixture(scope="module")
def api_url(service_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    process, url = start_api(service_env, tmp_path_factory.mktemp("api") / "api.log")
    yield url
    stop(process)


def cli_env(service_env: dict[str, str]) -> dict[str, str]:
    """The CLI's environment: the test services, with the admin key as the CLI's key."""
    return {**os.environ, **service_env, "GROUNDWIRE_API_KEY": service_env["GROUNDWIRE_ADMIN_KEY"]}


def groundwire(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "groundwire.cli", *args],
        env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip


def documents(url: str, env: dict[str, str], collection: str) -> dict[str, Any]:
    answer = httpx.get(
        f"{url}/v1/collections/{collection}/documents", headers=admin_headers(env), timeout=10
    )
    assert answer.status_code == 200, answer.text
    return {d["id"]: d for d in answer.json()["documents"]}


def make_site(root: Path, name: str) -> Path:
    site = root / name
    (site / "guide").mkdir(parents=True)
    (site / "guide" / "index.html").write_text(f"<title>{name} guide</title><p>{name} pages.</p>")
    (site / "manual.pdf").write_bytes(files.pdf([f"The {name} manual covers moorings."]))
    (site / "notes.txt").write_bytes(f"Caf\xe9 notes for {name}.".encode("latin-1"))
    (site / "tool.exe").write_bytes(b"MZ\x90\x00" + bytes(300))
    (site / ".env").write_text("SECRET=never sent\n")  # a hidden file stays home too
    (site / 'He said "hi".txt').write_text("A name a multipart filename cannot carry.\n")
    for hidden in (".git", "node_modules", ".cache"):
        (site / hidden).mkdir()
        (site / hidden / "secret.txt").write_text("never sent")
    return site


def test_folders_upload_safely_and_sync(
    api_url: str, service_env: dict[str, str], tmp_path: Path
) -> None:
    env = cli_env(service_env)
    a, b = make_site(tmp_path, "alpha"), make_site(tmp_path, "beta")
    (a / "broken.docx").write_bytes(b"PK\x03\x04" + bytes(50))  # a zip that is not one
    args = ["--collection", "cli-files", "--embedder", "hash", "--url", api_url]
    first = groundwire("ingest", str(a), str(b), *args, "--metadata", '{"site": "docs"}', env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    stored = documents(api_url, env, "cli-files")
    assert set(stored) == {
        f"{site}/{path}"
        for site in ("alpha", "beta")
        for path in ("guide/index.html", "manual.pdf", "notes.txt", 'He said "hi".txt')
    }, "one folder's index.html never overwrites the other's; hidden files stay home"
    assert stored["alpha/guide/index.html"]["title"] == "alpha guide"
    assert stored["beta/manual.pdf"]["metadata"]["site"] == "docs"
    assert all(d["status"] == "done" for d in stored.values())
    assert "sent 8, unchanged 0, failed 0, refused 0, skipped 3" in first.stdout
    assert "tool.exe: not a format Groundwire reads" in first.stdout
    assert "broken.docx: not a format Groundwire reads" in first.stdout

    collide = groundwire("ingest", str(a), str(b), *args, "--id-prefix", "site", env=env)
    assert collide.returncode == 2 and "nothing was sent" in collide.stderr, collide.stderr

    (a / "manual.pdf").unlink()
    (a / "new.md").write_text("# New page\n\nAdded later.\n")
    synced = groundwire(
        "ingest", str(a), *args, "--sync", "--exclude", "*.txt", env=env
    )  # fmt: skip
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert "sent 1, unchanged 1" in synced.stdout and "deleted 1" in synced.stdout, synced.stdout
    after = documents(api_url, env, "cli-files")
    assert "alpha/manual.pdf" not in after and "alpha/new.md" in after
    assert "alpha/notes.txt" in after  # left out by --exclude, not gone: kept
    assert "beta/manual.pdf" in after  # another folder's prefix: untouched

    single = groundwire("ingest", str(b / "manual.pdf"), *args, "--id-prefix", "one", env=env)
    assert single.returncode == 0 and "one/manual.pdf" in documents(api_url, env, "cli-files")


def test_a_failed_or_refused_file_is_reported_and_the_rest_go(
    api_url: str, service_env: dict[str, str], tmp_path: Path
) -> None:
    env = cli_env(service_env)
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "fine.md").write_text("An ordinary note about the pier.\n")
    (folder / "locked.pdf").write_bytes(files.pdf(encrypt="secret"))
    ran = groundwire("ingest", str(folder), "-c", "cli-mixed", "--embedder", "hash",
                     "--url", api_url, env=env)  # fmt: skip
    assert ran.returncode == 1, ran.stdout + ran.stderr
    assert "sent 2, unchanged 0, failed 1" in ran.stdout
    assert "failed  mixed/locked.pdf: parse: the PDF is encrypted" in ran.stdout
    assert documents(api_url, env, "cli-mixed")["mixed/fine.md"]["status"] == "done"


def test_ctrl_c_stops_sending_and_says_what_was_sent(
    api_url: str, service_env: dict[str, str], tmp_path: Path
) -> None:
    env = cli_env(service_env)
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(4000):
        (folder / f"note-{i:04}.txt").write_text(f"Harbour note number {i}.\n")
    # Ctrl-C reaches the command as it reaches a terminal's foreground job, however the suite
    # was started (a shell's background job inherits SIGINT ignored, and Python keeps that).
    process = subprocess.Popen(
        [sys.executable, "-m", "groundwire.cli", "ingest", str(folder), "-c", "cli-many",
         "--embedder", "hash", "--url", api_url],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip

    def started() -> bool:
        response = httpx.get(f"{api_url}/v1/collections/cli-many", headers=admin_headers(env))
        return response.status_code == 200 and sum(response.json()["documents"].values()) > 100

    wait_for(started, timeout=60, interval=0.05)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, out + err
    sent = int(out.split("interrupted: ", 1)[1].split(" of 4000 files")[0])
    on_their_way = int(out.split(" more were on their way")[0].rsplit("\n", 1)[-1] or 0)
    assert sent + on_their_way > 0 and sent < 4000, out
    counts = httpx.get(f"{api_url}/v1/collections/cli-many", headers=admin_headers(env)).json()
    assert sent <= sum(counts["documents"].values()) <= sent + on_their_way, out


def test_groundwire_answer_prints_the_checked_answer(
    api_url: str, service_env: dict[str, str], tmp_path: Path, fake_openai: Any
) -> None:
    fake_openai.reset(chat="uncited")
    env = cli_env(service_env)
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "leave.md").write_text("# Leave\n\nEmployees accrue 25 days of paid leave a year.\n")
    args = ["-c", "cli-answers", "--url", api_url]
    assert groundwire("ingest", str(folder), *args, "--embedder", "hash", env=env).returncode == 0
    ran = groundwire("answer", "How many days of paid leave a year?", *args, env=env)
    assert ran.returncode == 1, ran.stdout + ran.stderr  # one sentence is unsupported
    assert "Employees accrue 25 days of paid leave a year [1]." in ran.stdout
    assert "status: unsupported (gpt-4o-mini)" in ran.stdout
    assert "unsupported: The harbour also runs a museum" in ran.stdout
    assert "[1] Leave: leave.md" in ran.stdout
    strict = groundwire("answer", "How many days of paid leave a year?", *args, "--strict", env=env)
    assert strict.returncode == 0 and "museum" not in strict.stdout.split("status:")[0]
    fake_openai.reset()


def test_an_mcp_client_lists_and_calls_the_three_tools(
    api_url: str, service_env: dict[str, str], tmp_path: Path, fake_openai: Any
) -> None:
    import anyio
    from mcp.client.session import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    fake_openai.reset()
    env = cli_env(service_env)
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "tides.md").write_text("# Tides\n\nHigh tide at the north pier is at 06:40.\n")
    args = ["-c", "cli-mcp", "--url", api_url]
    assert groundwire("ingest", str(folder), *args, "--embedder", "hash", env=env).returncode == 0
    server = StdioServerParameters(
        command=sys.executable, args=["-m", "groundwire.cli", "mcp", *args], env=env
    )

    async def session() -> dict[str, Any]:
        async with stdio_client(server) as (read, write), ClientSession(read, write) as client:
            await client.initialize()
            tools = sorted(t.name for t in (await client.list_tools()).tools)
            called = {}
            for tool, body in (
                ("search", {"query": "high tide north pier", "k": 3}),
                ("context", {"query": "high tide north pier"}),
                ("answer", {"query": "When is high tide at the north pier?"}),
                ("search", {"query": ""}),  # refused by the API: a tool error, not a crash
            ):
                result = await client.call_tool(tool, body)
                called[f"{tool}:{bool(body['query'])}"] = result
            return {"tools": tools, **called}

    seen = anyio.run(session)
    assert seen["tools"] == ["answer", "context", "search"]
    search = seen["search:True"].structured_content
    assert search["grounded"] and search["results"][0]["document_id"] == "notes/tides.md"
    assert "[1]" in seen["context:True"].structured_content["context"]
    answered = seen["answer:True"].structured_content
    assert answered["status"] == "answered" and "06:40" in answered["answer"]
    refused = seen["search:False"]
    assert refused.is_error and "422" in refused.content[0].text


def test_a_client_that_leaves_a_stream_stops_the_model(
    api_url: str, service_env: dict[str, str], tmp_path: Path, fake_openai: Any
) -> None:
    env = cli_env(service_env)
    folder = tmp_path / "slow"
    folder.mkdir()
    (folder / "pier.md").write_text("# Pier\n\nThe eastern pier is 240 metres long.\n")
    args = ["-c", "cli-stream", "--url", api_url]
    assert groundwire("ingest", str(folder), *args, "--embedder", "hash", env=env).returncode == 0
    fake_openai.reset(chat="slow_stream")
    body = {"query": "How long is the eastern pier?", "stream": True}
    with httpx.stream(
        "POST", f"{api_url}/v1/collections/cli-stream/answer", json=body,
        headers=admin_headers(env), timeout=30,
    ) as response:  # fmt: skip
        first = next(response.iter_text())
        assert first.startswith("event: delta")
    # The client is gone after one delta: the API closes its stream from the model.
    wait_for(lambda: fake_openai.streams_cut == 1, timeout=10, interval=0.1)
    fake_openai.reset()
