"""A real headless Chromium for the console's tests: Debian's `chromium`, driven by
Playwright with its executable path set (Playwright's own browser download is never used).

Where no Chromium is installed, it is installed with apt-get when this process may (root,
apt-get present); failing that the test is skipped with the reason, except in CI
(`CI` set), where a missing browser fails the run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = Path(os.environ.get("GROUNDWIRE_TEST_ARTIFACTS", "test-artifacts"))


def _found() -> str | None:
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


def _install() -> str:
    """Installs Debian's chromium; returns what went wrong, or '' when it worked."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return "no chromium on PATH, and apt-get cannot be run here (not root, or no apt-get)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            return f"{' '.join(cmd)} failed: {done.stderr.strip()[-500:]}"
    return ""


def chromium_path() -> str:
    """The Chromium to drive: found, or installed now; else skip (fail in CI)."""
    path = _found()
    if path is None:
        problem = _install()
        path = _found()
        if path is None:
            reason = problem or "chromium was installed but is not on PATH"
            if os.environ.get("CI"):
                pytest.fail(f"the browser tests need Chromium: {reason}")
            pytest.skip(f"the browser tests need Chromium: {reason}")
    return path


def artifacts_dir(name: str) -> Path:
    """Where a test keeps its screenshots (GROUNDWIRE_TEST_ARTIFACTS, default test-artifacts/)."""
    folder = ARTIFACTS / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder
