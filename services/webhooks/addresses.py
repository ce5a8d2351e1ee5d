"""Which receiver URLs webhooks may reach: http(s) to public addresses only, unless the
operator allows private ones (GROUNDWIRE_WEBHOOK_ALLOW_PRIVATE). Checked when a webhook is
made and again before every delivery, which then connects to the very address that was
checked (`pinned`), so a name that resolves to a public address for the check and to a
private one for the connection (DNS rebinding) cannot slip through."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

import httpx

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# IPv6 prefixes that carry an IPv4 address in their last 32 bits (NAT64, IPv4-compatible);
# 6to4 (2002::/16) and IPv4-mapped addresses are read by the ipaddress module itself.
EMBEDDING_IPV4 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("::/96"))


class UrlRefused(Exception):
    """A webhook URL that may not be used; `code` says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Checked:
    """A URL that passed, and the addresses its host resolved to then."""

    parts: SplitResult
    port: int
    addresses: tuple[Address, ...]


def _addresses(host: str, port: int) -> tuple[Address, ...]:
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, ValueError) as error:
        raise UrlRefused("webhook_url_unresolvable", f"cannot resolve {host!r}") from error
    out: list[Address] = []
    for *_, sockaddr in found:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in out:
            out.append(address)
    return tuple(out)


def is_public(address: Address) -> bool:
    """Whether an address is a public unicast one, also as the IPv4 address it may carry."""
    if not address.is_global or address.is_multicast:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        inner = address.ipv4_mapped or address.sixtofour
        if inner is None and any(address in net for net in EMBEDDING_IPV4):
            inner = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if inner is not None and not is_public(inner):
            return False
    return True


def check_url(url: str, allow_private: bool) -> Checked:
    """The URL with its resolved addresses; raises UrlRefused unless it is an http(s) URL
    whose host resolves only to public addresses (any address, when `allow_private`)."""
    try:
        parts = urlsplit(url)
        port = parts.port if parts.port is not None else (443 if parts.scheme == "https" else 80)
        httpx.URL(url)  # what will send it must read it too
    except (ValueError, httpx.InvalidURL) as error:
        raise UrlRefused("invalid_webhook_url", f"not a URL: {error}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UrlRefused("invalid_webhook_url", "a webhook URL is http:// or https:// with a host")
    if parts.username or parts.password:
        raise UrlRefused("invalid_webhook_url", "a webhook URL carries no credentials")
    if port == 0:
        raise UrlRefused("invalid_webhook_url", "port 0 is no port to send to")
    addresses = _addresses(parts.hostname, port)
    if not allow_private:
        for address in addresses:
            if not is_public(address):
                raise UrlRefused(
                    "webhook_url_private",
                    f"{parts.hostname!r} resolves to a private, loopback or reserved address;"
                    " set GROUNDWIRE_WEBHOOK_ALLOW_PRIVATE=1 to allow it",
                )
    return Checked(parts, port, addresses)


def pinned(checked: Checked) -> tuple[str, dict[str, str], dict[str, str]]:
    """(URL to the first checked address, headers, httpx extensions) for a request that goes
    to that address while naming the original host: in `Host`, and for https in the TLS
    server name, which the certificate is verified against."""
    host = checked.parts.hostname or ""
    address = checked.addresses[0]
    literal = f"[{address}]" if address.version == 6 else str(address)
    default = 443 if checked.parts.scheme == "https" else 80
    netloc = literal if checked.port == default else f"{literal}:{checked.port}"
    url = checked.parts._replace(netloc=netloc).geturl()
    shown_host = f"[{host}]" if ":" in host else host
    headers = {"host": shown_host if checked.port == default else f"{shown_host}:{checked.port}"}
    extensions = {"sni_hostname": host} if checked.parts.scheme == "https" else {}
    return url, headers, extensions
