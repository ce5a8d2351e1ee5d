"""Where webhooks may point, and the request pinned to the address that was checked."""

from __future__ import annotations

import ipaddress

import pytest

from services.webhooks.addresses import UrlRefused, check_url, is_public, pinned


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:4700::1111", True),
        ("64:ff9b::5db8:d822", True),  # NAT64 of a public address
        ("127.0.0.1", False),
        ("10.0.0.1", False),
        ("169.254.169.254", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1", False),
        ("::ffff:10.0.0.1", False),  # IPv4-mapped
        ("::7f00:1", False),  # IPv4-compatible loopback
        ("64:ff9b::7f00:1", False),  # NAT64 of loopback
        ("2002:7f00:1::", False),  # 6to4 of loopback
    ],
)
def test_only_public_unicast_addresses_are_public(address: str, public: bool) -> None:
    assert is_public(ipaddress.ip_address(address)) is public


def test_a_request_goes_to_the_checked_address_naming_the_host() -> None:
    checked = check_url("http://localhost:9000/hooks?token=x", allow_private=True)
    url, headers, extensions = pinned(checked)
    assert url in ("http://127.0.0.1:9000/hooks?token=x", "http://[::1]:9000/hooks?token=x")
    assert headers == {"host": "localhost:9000"} and extensions == {}
    https = pinned(check_url("https://93.184.216.34/hooks", allow_private=False))
    assert https == (
        "https://93.184.216.34/hooks",
        {"host": "93.184.216.34"},
        {"sni_hostname": "93.184.216.34"},
    )
    with pytest.raises(UrlRefused) as refused:
        check_url("http://localhost:9000/hooks", allow_private=False)
    assert refused.value.code == "webhook_url_private"
