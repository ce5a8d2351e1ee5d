"""The Host names the API answers to: a guard against DNS rebinding.

A web page on an attacker's domain can make the operator's browser resolve that domain to
127.0.0.1 and send requests to an API bound there; the browser then sends the attacker's name
as Host. Answering only Host names the operator chose (loopback, the address the request
reached the server at, GROUNDWIRE_ALLOWED_HOSTS) leaves such a page nothing but a 421.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from services.api.errors import error_response

LOOPBACK = ("localhost", "127.0.0.1", "::1")
# Addresses that mean "every interface": no name a client could send.
WILDCARDS = frozenset({"", "0.0.0.0", "::"})


def split_host(value: str) -> tuple[str, str | None] | None:
    """Splits `name`, `name:port`, `[v6]` or `[v6]:port` into a lower-case name without a
    trailing dot and the port (None when absent); None when the value is malformed."""
    value = value.strip().lower()
    if value.startswith("["):
        name, bracket, rest = value[1:].partition("]")
        if not bracket or (rest and not (rest.startswith(":") and rest[1:].isdigit())):
            return None
        return name, rest[1:] or None
    if value.count(":") > 1:  # a bare IPv6 address (a configured entry may be written so)
        return value, None
    name, colon, port = value.partition(":")
    if colon and not port.isdigit():
        return None
    return name.rstrip("."), port if colon else None


class HostPolicy:
    """Which Host values are answered: `*` for any, else names (any port), `name:port`
    (that port only) and `.domain` (the domain and its subdomains)."""

    def __init__(self, entries: Iterable[str]) -> None:
        self.any = False
        self.names: set[str] = set()
        self.name_ports: set[tuple[str, str]] = set()
        self.domains: list[str] = []
        for entry in entries:
            entry = entry.strip()
            if entry == "*":
                self.any = True
            elif entry.startswith("."):
                self.domains.append(entry.lower().rstrip("."))
            elif entry and (split := split_host(entry)) is not None:
                name, port = split
                if port is None:
                    self.names.add(name)
                else:
                    self.name_ports.add((name, port))

    @classmethod
    def from_setting(cls, allowed: str, bound_host: str | None = None) -> HostPolicy:
        """Loopback names, the bound host unless it is a wildcard, and `allowed` (commas)."""
        entries = [*LOOPBACK, *allowed.split(",")]
        if bound_host is not None and bound_host.strip("[]") not in WILDCARDS:
            entries.append(bound_host)
        return cls(entries)

    def allows(self, host: str, server_host: str | None = None) -> bool:
        """Whether a request carrying Host `host` is answered; `server_host` is the address
        the request reached (an IP literal, which no rebinding page can send as its Host)."""
        if self.any:
            return True
        split = split_host(host)
        if split is None:
            return False
        name, port = split
        if name in self.names or (server_host is not None and name == server_host.lower()):
            return True
        if port is not None and (name, port) in self.name_ports:
            return True
        return any(name == d[1:] or name.endswith(d) for d in self.domains)


class AllowedHosts:
    """ASGI middleware answering 421 (the error JSON) to a request whose Host is not allowed.

    A request without a Host header (HTTP/1.0) is answered: a browser always sends one. The
    connection is closed after a refusal, so a body the request carries is not read.
    """

    def __init__(self, app: ASGIApp, allowed: str = "", bound_host: str | None = None) -> None:
        self.app = app
        self.policy = HostPolicy.from_setting(allowed, bound_host)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.policy.any:
            await self.app(scope, receive, send)
            return
        hosts = [value for name, value in scope.get("headers", []) if name == b"host"]
        server = scope.get("server")
        server_host = str(server[0]) if server else None
        if len(hosts) > 1:
            refusal = error_response(
                400, "bad_request", "more than one Host header", {"Connection": "close"}
            )
            await refusal(scope, receive, send)
            return
        if hosts and not self.policy.allows(hosts[0].decode("latin-1"), server_host):
            shown = hosts[0].decode("latin-1")[:100]
            refusal = error_response(
                421,
                "host_not_allowed",
                f"this server does not answer to Host {shown!r}; see GROUNDWIRE_ALLOWED_HOSTS",
                {"Connection": "close"},
            )
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)
