"""The real thing end to end: `groundwire up` (a real uvicorn and worker) driven by the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.support.processes import free_port
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow


def groundwire(
    *args: str, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "groundwire.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def beir_folder(root: Path) -> Path:
    """Two questions judged against the documents the test ingests (nothing else)."""
    root.mkdir()
    (root / "corpus.jsonl").write_text(
        json.dumps({"id": "comets.md", "text": "Comets"}) + "\n"
        + json.dumps({"id": "sub/rivers.txt", "text": "Rivers"}) + "\n"
    )  # fmt: skip
    (root / "queries.jsonl").write_text(
        json.dumps({"id": "q1", "text": "comets tails gas sun"}) + "\n"
        + json.dumps({"id": "q2", "text": "rivers silt deltas sea"}) + "\n"
    )  # fmt: skip
    (root / "qrels.tsv").write_text(
        "query-id\tdoc-id\tscore\nq1\tcomets.md\t1\nq2\tsub/rivers.txt\t1\n"
    )
    return root


def test_up_ingest_query_and_clean_stop(
    service_env: dict[str, str], fake_openai: Any, tmp_path: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    data = tmp_path / "data"
    # No admin key given: `up` makes one, keeps it in the data dir, and the CLI finds it there.
    env = {**os.environ, **service_env, "GROUNDWIRE_DATA_DIR": str(data)}
    del env["GROUNDWIRE_ADMIN_KEY"]
    log = (tmp_path / "up.log").open("wb")
    up = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "groundwire.cli",
            "up",
            "--port",
            str(port),
            "--data-dir",
            str(data),
            "--concurrency",
            "1",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:

        def ready() -> bool:
            assert up.poll() is None, (tmp_path / "up.log").read_text()[-3000:]
            try:
                return httpx.get(f"{url}/readyz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, timeout=60, interval=0.3)
        key_file = data / "admin-key"
        admin_key = key_file.read_text().strip()
        assert admin_key.startswith("gw_") and key_file.stat().st_mode & 0o777 == 0o600
        assert (tmp_path / "up.log").read_text().count(admin_key) == 1, "printed once"
        assert httpx.get(f"{url}/v1/collections", timeout=5).status_code == 401
        docs = tmp_path / "docs"
        (docs / "sub").mkdir(parents=True)
        (docs / "comets.md").write_text(  # a title that would retitle the terminal
            "# Comets\x1b]0;owned\x07\x1b[2J\n\nComets grow glowing tails of gas near the sun.\n"
        )
        (docs / "sub" / "rivers.txt").write_text(
            "Rivers deposit silt in wide deltas where they meet the sea.\n"
        )
        (docs / "ignored.bin").write_bytes(b"\x00\x01")

        ingested = groundwire(
            "ingest", str(docs), "-c", "cli-docs", "--embedder", "hash", "--url", url, env=env
        )
        assert ingested.returncode == 0, ingested.stdout + ingested.stderr
        assert "2 documents: 2 done" in ingested.stdout

        found = groundwire("query", "comets tails gas sun", "-c", "cli-docs", "--url", url, env=env)
        assert found.returncode == 0, found.stderr
        assert "Comets" in found.stdout and "comets.md" in found.stdout
        assert "\x1b" not in found.stdout and "\x07" not in found.stdout
        # No --url and no GROUNDWIRE_URL: the CLI finds the instance from its data directory.
        assert (data / "api-url").read_text().strip() == url
        found_alone = groundwire("query", "comets tails gas sun", "-c", "cli-docs", env=env)
        assert found_alone.returncode == 0 and "Comets" in found_alone.stdout, found_alone.stderr

        nothing = groundwire(
            "query", "medieval tax ledgers", "-c", "cli-docs", "--url", url, env=env
        )
        assert "Nothing relevant found" in nothing.stdout

        fake_openai.reset(dimensions=32, reject_marker="POISON")
        bad = tmp_path / "bad"
        bad.mkdir()
        (bad / "fine.md").write_text("A perfectly ordinary note.\n")
        (bad / "poison.md").write_text("This note carries a POISON marker the provider rejects.\n")
        failing = groundwire(
            "ingest", str(bad), "-c", "cli-fail", "--embedder", "openai:cli-model",
            "--url", url, env=env,
        )  # fmt: skip
        assert failing.returncode == 1, failing.stdout + failing.stderr
        assert "2 documents: 1 done" in failing.stdout and "1 failed" in failing.stdout

        created = groundwire(
            "keys", "create", "reader", "--scopes", "read", "--collections", "cli-docs",
            "--expires-in-days", "1", "--url", url, env=env,
        )  # fmt: skip
        assert created.returncode == 0, created.stderr
        secret = created.stdout.strip()
        assert secret.startswith("gw_") and secret != admin_key
        as_reader = {**env, "GROUNDWIRE_API_KEY": secret}
        found = groundwire("query", "comets", "-c", "cli-docs", "--url", url, env=as_reader)
        assert found.returncode == 0 and "Comets" in found.stdout, found.stderr
        other = groundwire("query", "comets", "-c", "cli-fail", "--url", url, env=as_reader)
        assert other.returncode != 0 and "error 404" in other.stderr, other.stderr
        listed = groundwire("keys", "list", "--url", url, env=env)
        assert "reader" in listed.stdout and secret not in listed.stdout
        key_id = next(line.split()[0] for line in listed.stdout.splitlines() if "reader" in line)
        assert groundwire("keys", "revoke", key_id, "--url", url, env=env).returncode == 0
        refused = groundwire("query", "comets", "-c", "cli-docs", "--url", url, env=as_reader)
        assert "error 401" in refused.stderr, refused.stderr

        # The shadow space of a migration, measured beside the active one by `eval`.
        tiny = beir_folder(tmp_path / "tiny")
        shadow = ("eval", str(tiny), "-c", "cli-docs", "--space", "shadow", "--modes", "keyword")
        none = groundwire(*shadow, "--url", url, env=env)
        assert none.returncode == 1 and "no migration building" in none.stderr, none.stderr
        started = httpx.post(
            f"{url}/v1/collections/cli-docs/migrations",
            json={"chunk_tokens": 64},
            headers={"Authorization": f"Bearer {admin_key}"},
        )
        assert started.status_code == 202, started.text
        compared = groundwire(*shadow, "--url", url, env=env)
        assert compared.returncode == 0, compared.stderr
        assert "keyword    shadow" in compared.stdout and "recorded on migration" in compared.stdout

        children = psutil.Process(up.pid).children(recursive=True)
        assert children
    finally:
        up.send_signal(signal.SIGTERM)
        up.wait(60)
        log.close()
    assert up.returncode == 0
    assert not (data / "api-url").exists(), "a stopped instance's URL was left behind"
    _, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, f"orphans left behind: {alive}"
