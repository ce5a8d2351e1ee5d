"""Operators' own models: one folder each under the models folder, with a manifest.

    <models folder>/<name>/manifest.json
    {"kind": "reranker", "model": "model.onnx", "tokenizer": "tokenizer.json",
     "max_tokens": 512, "sha256": {"model.onnx": "<hex>", "tokenizer.json": "<hex>"},
     "license": "apache-2.0"}

`kind` is `reranker` (a cross-encoder scoring a question and a passage) or `support` (one
scoring whether a passage entails a sentence: docs/answers.md).

Every file the manifest names is checked against its sha256 before it is used, so a model
swapped or truncated on disk is a clear error, not different scores.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_HEX = re.compile(r"^[0-9a-f]{64}$")


LOCAL_PREFIX = "local:"


def local_model_name(spec: str | None) -> str | None:
    """The folder name a `local:<name>` setting names; None for any other value."""
    if spec is None or not spec.startswith(LOCAL_PREFIX):
        return None
    return spec.removeprefix(LOCAL_PREFIX)


class ModelFolderError(ValueError):
    """A model folder is missing, malformed, or does not match its manifest."""


class Manifest(BaseModel):
    """What a model folder holds."""

    model_config = ConfigDict(extra="allow")

    kind: Literal["reranker", "support", "embedder"]
    model: str = "model.onnx"
    tokenizer: str = "tokenizer.json"
    max_tokens: int = Field(default=512, ge=8, le=8192)
    sha256: dict[str, str]
    license: str | None = None
    # Support models: the output label that means "entailed" (NLI models give several; a
    # model with one logit gives its sigmoid), and the score under which a sentence counts
    # as unsupported.
    labels: list[str] | None = None
    entailment_label: str = "entailment"
    threshold: float = Field(default=0.5, ge=0.0, le=1.0)


def sha256_of(path: Path) -> str:
    """The file's sha256, read 1 MiB at a time."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def model_folder(root: Path, name: str, kind: str) -> tuple[Path, Manifest]:
    """Returns the folder of model `name` and its manifest, with every file checked."""
    if not _NAME.match(name):
        raise ModelFolderError(f"model name {name!r} is not a folder name (letters, digits, . _ -)")
    folder = root / name
    try:
        manifest = Manifest.model_validate(json.loads((folder / "manifest.json").read_text()))
    except FileNotFoundError:
        raise ModelFolderError(
            f"model {name!r}: {folder / 'manifest.json'} does not exist"
        ) from None
    except (ValueError, ValidationError) as error:
        raise ModelFolderError(f"model {name!r}: manifest.json is not valid: {error}") from None
    if manifest.kind != kind:
        raise ModelFolderError(f"model {name!r} has kind {manifest.kind!r}, not {kind!r}")
    for file in (manifest.model, manifest.tokenizer):
        path = folder / file
        if Path(file).name != file or not path.is_file():
            raise ModelFolderError(f"model {name!r}: {file} is not a file of its folder")
        expected = manifest.sha256.get(file)
        if expected is None or not _HEX.match(expected):
            raise ModelFolderError(f"model {name!r}: the manifest gives no sha256 for {file}")
        actual = sha256_of(path)
        if actual != expected:
            raise ModelFolderError(
                f"model {name!r}: {file} has sha256 {actual}, the manifest says {expected}"
            )
    return folder, manifest
