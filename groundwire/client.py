"""Command-line clients over the HTTP API: `groundwire ingest`, `query` and `keys`.

Every request carries an API key: `GROUNDWIRE_API_KEY`, else the server admin key that
`groundwire up` wrote to `<data dir>/admin-key` (`GROUNDWIRE_DATA_DIR`, default
`.groundwire`), so the commands work as printed against a local `groundwire up`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from services.batching import pack
from services.config import Settings

ADMIN_KEY_FILE = "admin-key"
API_URL_FILE = "api-url"  # where a running `groundwire up` answers, written by it
DEFAULT_URL = "http://127.0.0.1:8000"

CONTENT_TYPES = {
    ".txt": "text/plain",
    ".text": "text/plain",
    ".rst": "text/plain",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".html": "text/html",
    ".htm": "text/html",
}
MAX_BATCH_DOCUMENTS = 1000
MAX_BATCH_BYTES = 32 * 1024 * 1024


def find_files(paths: list[Path]) -> Iterator[tuple[Path, Path]]:
    """Yields (file, root it was found under) for every text or Markdown file."""
    for path in paths:
        if path.is_dir():
            for file in sorted(path.rglob("*")):
                if file.is_file() and file.suffix.lower() in CONTENT_TYPES:
                    yield file, path
        elif path.is_file():
            yield path, path.parent
        else:
            raise FileNotFoundError(path)


def title_of(text: str, fallback: str) -> str:
    """Returns the first Markdown heading of `text`, else `fallback`."""
    for line in text.splitlines()[:50]:
        if line.startswith("#"):
            return line.lstrip("#").strip() or fallback
    return fallback


def read_documents(paths: list[Path]) -> Iterator[dict[str, Any]]:
    """Yields API documents for the files under `paths`, id'd by their relative path."""
    for file, root in find_files(paths):
        text = file.read_text(encoding="utf-8", errors="replace")
        if not text.strip():
            print(f"skipping empty file {file}", file=sys.stderr)
            continue
        rel = file.relative_to(root).as_posix() if file != root else file.name
        content_type = CONTENT_TYPES.get(file.suffix.lower(), "text/plain")
        yield {
            "id": rel,
            "text": text,
            "content_type": content_type,
            "title": title_of(text, file.stem) if content_type != "text/html" else file.stem,
            "source": str(file),
        }


def batches(documents: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """Groups documents into requests within the API's count and size limits."""
    return pack(
        documents,
        lambda doc: len(doc["text"].encode("utf-8")) + 512,
        MAX_BATCH_DOCUMENTS,
        MAX_BATCH_BYTES,
    )


def _check(response: httpx.Response) -> dict[str, Any]:
    if response.status_code >= 400:
        try:
            error = response.json()["error"]
            message = f"{error['code']}: {error['message']}"
        except Exception:
            message = response.text[:500]
        raise SystemExit(f"error {response.status_code}: {message}")
    return response.json() if response.content else {}


def ensure_collection(client: httpx.Client, name: str, embedder: str | None) -> None:
    """Creates the collection unless it exists."""
    if client.get(f"/v1/collections/{name}").status_code == 404:
        body: dict[str, Any] = {"name": name}
        if embedder:
            body["embedder"] = embedder
        created = _check(client.post("/v1/collections", json=body))
        print(f"created collection {name} ({created['embedder']}, {created['dimensions']} dims)")


def api_key(settings: Settings) -> str | None:
    """The key the CLI sends: `GROUNDWIRE_API_KEY`, else the one `groundwire up` wrote."""
    if settings.api_key is not None:
        return settings.api_key.get_secret_value()
    path = settings.data_dir / ADMIN_KEY_FILE
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def api_url(explicit: str | None, settings: Settings) -> tuple[str, str]:
    """Returns the API's URL and where it was found: `--url`, else `GROUNDWIRE_URL`, else the
    file a running `groundwire up` keeps in its data directory, else the default."""
    if explicit:
        return explicit, "--url"
    if settings.url:
        return settings.url, "GROUNDWIRE_URL"
    path = settings.data_dir / API_URL_FILE
    try:
        found = path.read_text(encoding="utf-8").strip()
    except OSError:
        found = ""
    if found:
        return found, str(path)
    return DEFAULT_URL, f"the default (no --url, no GROUNDWIRE_URL, no {path})"


class Unreachable(Exception):
    """The API did not answer."""


class _Explained(httpx.BaseTransport):
    """A transport whose connection failures say where the URL came from."""

    def __init__(self, base: str, where: str) -> None:
        self.inner = httpx.HTTPTransport()
        self.base, self.where = base, where

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return self.inner.handle_request(request)
        except httpx.TransportError as error:
            raise Unreachable(
                f"cannot reach the Groundwire API at {self.base} ({type(error).__name__}; the"
                f" URL came from {self.where}). Is it running? Start it with `groundwire up`,"
                " or pass --url."
            ) from None

    def close(self) -> None:
        self.inner.close()


def connect(url: str | None, settings: Settings, timeout: float = 120) -> httpx.Client:
    """An HTTP client of the API (see `api_url`) that sends the CLI's key; a request that
    cannot reach it raises Unreachable."""
    base, where = api_url(url, settings)
    key = api_key(settings)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(
        base_url=base, timeout=timeout, headers=headers, transport=_Explained(base, where)
    )


def ingest(client: httpx.Client, collection: str, paths: list[Path], embedder: str | None) -> int:
    """Posts the files and follows their batches; returns 1 if any document failed."""
    for path in paths:  # before anything is created on the server
        if not path.exists():
            raise FileNotFoundError(2, "no such file or directory", str(path))
    with client:
        ensure_collection(client, collection, embedder)
        batch_ids = []
        for batch in batches(read_documents(paths)):
            accepted = _check(
                client.post(f"/v1/collections/{collection}/documents", json={"documents": batch})
            )
            batch_ids.append(accepted["batch_id"])
        if not batch_ids:
            print("no text or Markdown files found")
            return 1
        interactive, shown = sys.stdout.isatty(), ""
        while True:
            states = [_check(client.get(f"/v1/batches/{b}")) for b in batch_ids]
            totals = {
                k: sum(s[k] for s in states)
                for k in ("total", "done", "failed", "unchanged", "queued", "processing")
            }
            line = (
                "{total} documents: {done} done, {unchanged} unchanged, {failed} failed, "
                "{queued} queued, {processing} processing".format(**totals)
            )
            finished = all(s["finished"] for s in states)
            if interactive:  # one line, rewritten in place
                print("\r" + line, end="\n" if finished else "", flush=True)
            elif line != shown:  # a log or a pipe: a line per change
                print(line, flush=True)
            shown = line
            if finished:
                return 1 if totals["failed"] else 0
            time.sleep(0.5)


def query(
    client: httpx.Client, collection: str, question: str, k: int, min_score: float | None
) -> int:
    """Prints the grounded passages with their sources, or says nothing relevant was found."""
    body: dict[str, Any] = {"query": question, "k": k}
    if min_score is not None:
        body["min_score"] = min_score
    with client:
        answer = _check(client.post(f"/v1/collections/{collection}/query", json=body))
    if not answer["grounded"]:
        best = answer["best_score"]
        best_text = f"{best:.3f}" if best is not None else "none"
        print(
            f"Nothing relevant found (best score {best_text}, threshold {answer['threshold']:.3f})."
        )
        return 0
    for n, passage in enumerate(answer["results"], 1):
        where = passage["source"] or passage["document_id"]
        chunk = passage["chunk"]
        print(f"[{n}] {passage['title'] or passage['document_id']}  score {passage['score']:.3f}")
        print(f"    {where} chars {chunk['start']}-{chunk['end']}")
        print("    " + passage["text"].strip().replace("\n", "\n    "))
        print()
    return 0


def create_key(
    client: httpx.Client,
    name: str,
    scopes: list[str],
    collections: list[str] | None,
    expires_in_days: float | None,
) -> int:
    """Creates a key and prints its secret (shown this once) and id."""
    body: dict[str, Any] = {"name": name, "scopes": scopes}
    if collections is not None:
        body["collections"] = collections
    if expires_in_days is not None:
        expires = datetime.now(UTC) + timedelta(days=expires_in_days)
        body["expires_at"] = expires.isoformat()
    with client:
        created = _check(client.post("/v1/keys", json=body))
    print(created["key"])
    print(
        f"key {created['id']} ({created['name']}, workspace {created['workspace']},"
        f" scopes {','.join(created['scopes'])}): keep the secret above, it is not shown again",
        file=sys.stderr,
    )
    return 0


def list_keys(client: httpx.Client) -> int:
    """Prints the workspace's keys, one a line."""
    with client:
        keys = _check(client.get("/v1/keys"))["keys"]
    for key in keys:
        reach = ",".join(key["collections"]) if key["collections"] is not None else "*"
        print(
            f"{key['id']}  {key['prefix']}…  {key['name']}  scopes={','.join(key['scopes'])}"
            f"  collections={reach}  expires={key['expires_at'] or 'never'}"
            f"  last_used={key['last_used_at'] or 'never'}"
        )
    return 0


def revoke_key(client: httpx.Client, key_id: str) -> int:
    """Revokes a key."""
    with client:
        _check(client.delete(f"/v1/keys/{key_id}"))
    print(f"revoked {key_id}")
    return 0
