"""The CLI prints text, not terminal control; database errors never show a password; a server
that is not there is one line that says where the CLI looked."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from groundwire.terminal import strip_controls
from services.db import scrub_url
from tests.support.processes import free_port


def test_escape_sequences_and_control_characters_are_removed() -> None:
    hostile = (
        "title\x1b]0;owned\x07 \x1b[2J\x1b[31mred\x1b[0m \x1b]8;;http://x\x1b\\link"
        "\x1b]8;;\x1b\\ bell\x07 nul\x00 c1\x9b6n done"
    )
    assert strip_controls(hostile) == "title red link bell nul c16n done"
    assert strip_controls("lines\n\ttabbed\r\n") == "lines\n\ttabbed\r\n"
    assert strip_controls("Ünïcödé — 文字") == "Ünïcödé — 文字"


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://analyst:s3cr%40t-pw@db.internal:5432/groundwire",
        "postgresql://analyst:s3cr@t-pw@db:5432/groundwire?sslmode",  # malformed
        "postgres://only-user@db/groundwire",
    ],
)
def test_database_errors_lose_their_credentials(url: str) -> None:
    said = f'missing "=" after "{url}" in connection info string'
    scrubbed = scrub_url(said, url)
    for secret in ("s3cr", "analyst", "only-user"):
        assert secret not in scrubbed, scrubbed
    assert scrub_url("plain text", "") == "plain text"


@pytest.mark.slow
def test_an_unreachable_api_is_one_line_that_says_where_the_url_came_from(
    tmp_path: Path,
) -> None:
    port = free_port()
    data = tmp_path / "data"
    data.mkdir()
    (data / "api-url").write_text(f"http://127.0.0.1:{port}\n")
    env = {**os.environ, "GROUNDWIRE_DATA_DIR": str(data)}
    done = subprocess.run(
        [sys.executable, "-m", "groundwire.cli", "query", "anything", "-c", "docs"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert f"127.0.0.1:{port}" in done.stderr and str(data / "api-url") in done.stderr

    missing = subprocess.run(
        [sys.executable, "-m", "groundwire.cli", "ingest", str(tmp_path / "nowhere"), "-c", "d"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert missing.returncode == 1 and "Traceback" not in missing.stderr, missing.stderr
    assert "no such file or directory" in missing.stderr


def test_a_passage_says_where_it_is_in_its_original() -> None:
    from groundwire.client import _location

    assert _location({"page": 3}) == " page 3"
    assert _location({"start_seconds": 2.4, "end_seconds": 75.1}) == " 0:02-1:15"
    assert _location(None) == ""
