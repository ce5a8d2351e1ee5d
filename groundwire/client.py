"""Command-line clients over the HTTP API: the connection, `query` and `keys` (`ingest` is
groundwire/ingest.py).

Every request carries an API key: `GROUNDWIRE_API_KEY`, else the server admin key that
`groundwire up` wrote to `<data dir>/admin-key` (`GROUNDWIRE_DATA_DIR`, default
`.groundwire`), so the commands work as printed against a local `groundwire up`.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

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


def error_of(response: httpx.Response) -> str:
    """An error answer in one line: its status, code and message (the API's error shape)."""
    try:
        error = response.json()["error"]
        return f"{response.status_code} {error['code']}: {error['message']}"
    except (ValueError, KeyError, TypeError):
        return f"{response.status_code}: {response.text[:300]}"


def check(response: httpx.Response) -> dict[str, Any]:
    """The answer's JSON body; an error answer ends the command with `error_of`'s line."""
    if response.status_code >= 400:
        raise SystemExit(f"error {error_of(response)}")
    return dict(response.json()) if response.content else {}


def ensure_collection(client: httpx.Client, name: str, embedder: str | None) -> None:
    """Creates the collection unless it exists."""
    if client.get(f"/v1/collections/{name}").status_code == 404:
        body: dict[str, Any] = {"name": name}
        if embedder:
            body["embedder"] = embedder
        created = check(client.post("/v1/collections", json=body))
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


def query(
    client: httpx.Client,
    collection: str,
    question: str,
    k: int,
    min_score: float | None,
    rerank: bool = False,
) -> int:
    """Prints the grounded passages with their sources, or says nothing relevant was found."""
    body: dict[str, Any] = {"query": question, "k": k}
    if min_score is not None:
        body["min_score"] = min_score
    if rerank:
        body["rerank"] = True
    with client:
        answer = check(client.post(f"/v1/collections/{collection}/query", json=body))
    if not answer["grounded"]:
        best = answer["best_score"]
        best_text = f"{best:.3f}" if best is not None else "none"
        print(
            f"Nothing relevant found (best score {best_text}, threshold {answer['threshold']:.3f})."
        )
        return 0
    if answer.get("reranked") is False:
        print("(the reranker did not answer in time: passages in retrieval order)")
    for n, passage in enumerate(answer["results"], 1):
        where = passage["source"] or passage["document_id"]
        chunk = passage["chunk"]
        reranked = passage.get("rerank_score")
        print(
            f"[{n}] {passage['title'] or passage['document_id']}  score {passage['score']:.3f}"
            + (f"  rerank {reranked:.3f}" if reranked is not None else "")
        )
        print(
            f"    {where}{_location(passage.get('location'))} chars {chunk['start']}-{chunk['end']}"
        )
        print("    " + passage["text"].strip().replace("\n", "\n    "))
        print()
    return 0


def answer(
    client: httpx.Client, collection: str, question: str, strict: bool, rerank: bool = False
) -> int:
    """Prints the grounded answer, then each unsupported sentence and the passages cited;
    returns 0 when the answer is grounded, 1 otherwise (no context, declined, unsupported)."""
    body: dict[str, Any] = {"query": question, "strict": strict}
    if rerank:
        body["rerank"] = True
    with client:
        reply = check(client.post(f"/v1/collections/{collection}/answer", json=body))
    print(reply["answer"])
    print()
    print(f"status: {reply['status']}" + (f" ({reply['model']})" if reply["model"] else ""))
    for sentence in reply["sentences"]:
        if not sentence["supported"]:
            print(f"  unsupported: {sentence['text']}")
    for citation in reply["citations"]:
        where = citation["source"] or citation["document_id"]
        title = citation["title"] or citation["document_id"]
        print(f"  [{citation['n']}] {title}: {where}{_location(citation['location'])}")
    return 0 if reply["grounded"] else 1


def _location(location: dict[str, Any] | None) -> str:
    """` page 3` or ` 0:02-0:05` for a passage's place in its original; nothing without one."""
    if not location:
        return ""
    if "page" in location:
        return f" page {location['page']}"

    def clock(seconds: float) -> str:
        minutes, rest = divmod(int(seconds), 60)
        return f"{minutes}:{rest:02}"

    return f" {clock(location['start_seconds'])}-{clock(location['end_seconds'])}"


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
        created = check(client.post("/v1/keys", json=body))
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
        keys = check(client.get("/v1/keys"))["keys"]
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
        check(client.delete(f"/v1/keys/{key_id}"))
    print(f"revoked {key_id}")
    return 0
