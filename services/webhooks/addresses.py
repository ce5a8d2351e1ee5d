"""Which receiver URLs webhooks may reach: http(s) to public addresses only, unless the
operator allows private ones (GROUNDWIRE_WEBHOOK_ALLOW_PRIVATE). Checked when a webhook is
made and again before every delivery, since a name can come to resolve elsewhere."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

import httpx


class UrlRefused(Exception):
    """A webhook URL that may not be used; `code` says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _addresses(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise UrlRefused("webhook_url_unresolvable", f"cannot resolve {host!r}") from error
    out = []
    for *_, sockaddr in found:
        out.append(ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0]))
    return out


def check_url(url: str, allow_private: bool) -> None:
    """Raises UrlRefused unless `url` is an http(s) URL whose host resolves only to public
    addresses (any address, when `allow_private`)."""
    try:
        parts = urlsplit(url)
        port = parts.port if parts.port is not None else (443 if parts.scheme == "https" else 80)
        httpx.URL(url)  # what will send it must read it too
    except (ValueError, httpx.InvalidURL) as error:
        raise UrlRefused("invalid_webhook_url", f"not a URL: {error}") from None
    if port == 0:
        raise UrlRefused("invalid_webhook_url", "port 0 is no port to send to")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UrlRefused("invalid_webhook_url", "a webhook URL is http:// or https:// with a host")
    if parts.username or parts.password:
        raise UrlRefused("invalid_webhook_url", "a webhook URL carries no credentials")
    addresses = _addresses(parts.hostname, port)
    if allow_private:
        return
    for address in addresses:
        if not address.is_global or address.is_multicast:
            raise UrlRefused(
                "webhook_url_private",
                f"{parts.hostname!r} resolves to a private, loopback or reserved address;"
                " set GROUNDWIRE_WEBHOOK_ALLOW_PRIVATE=1 to allow it",
            )
