"""`groundwire mcp --collection C`: a Model Context Protocol server on stdio (the official `mcp`
package, MIT) that gives agents three tools over one collection: `search` (passages with
scores and locations), `context` (prompt-ready context with `[n]` citations) and `answer`
(a grounded answer, every sentence checked). The tools call the HTTP API with the CLI's key
and URL, so an agent sees exactly what that key may see.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError  # its message reaches the agent

from groundwire.client import Unreachable, error_of


def _post(client: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    try:
        response = client.post(path, json=body)
    except (httpx.HTTPError, Unreachable) as failure:
        raise ToolError(f"the Groundwire API did not answer: {failure}") from None
    if response.status_code >= 400:
        raise ToolError(error_of(response))
    try:
        return dict(response.json())
    except ValueError:
        raise ToolError(
            f"the Groundwire API answered what is not JSON: {response.text[:200]}"
        ) from None


def build(client: httpx.Client, collection: str) -> MCPServer[Any]:
    """The server and its three tools, over `collection` through `client`."""
    base = f"/v1/collections/{quote(collection, safe='')}"
    server: MCPServer[Any] = MCPServer(
        "groundwire",
        instructions=(
            f"Grounded retrieval over the {collection!r} collection. Use `answer` for a checked"
            " answer with citations, `context` for passages to quote from, `search` to look."
            " When nothing is relevant the tools say so: do not make an answer up."
        ),
    )

    @server.tool()
    def search(query: str, k: int = 5) -> dict[str, Any]:
        """Passages relevant to the query, best first, with scores, citations and where in
        their documents they are; `grounded: false` and none when nothing is relevant."""
        return _post(client, f"{base}/query", {"query": query, "k": k})

    @server.tool()
    def context(query: str, max_tokens: int = 1500) -> dict[str, Any]:
        """The relevant passages packed into `max_tokens`, each marked [n], with what each
        [n] cites; empty when nothing is relevant."""
        return _post(client, f"{base}/context", {"query": query, "max_tokens": max_tokens})

    @server.tool()
    def answer(query: str, strict: bool = False) -> dict[str, Any]:
        """A grounded answer: every sentence checked against the passages it cites
        (`status`: answered, no_context, declined or unsupported); `strict` leaves
        unsupported sentences out."""
        return _post(client, f"{base}/answer", {"query": query, "strict": strict})

    return server


def serve(client: httpx.Client, collection: str) -> int:
    """Runs the server on stdin and stdout until the client leaves."""
    with client:
        build(client, collection).run("stdio")
    return 0
