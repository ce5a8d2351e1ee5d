"""API key secrets: random, recognisable by their prefix, kept only as a SHA-256 digest.

A key is 32 random bytes (256 bits) after `gw_`: a digest of it is as good as a slow hash,
since nothing about it can be guessed, and it can be looked up by its digest directly.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

KEY_PREFIX = "gw_"
_SHOWN = len(KEY_PREFIX) + 8  # what listings show of a key: enough to tell keys apart


def new_secret() -> str:
    """Returns a new API key secret."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def digest(secret: str) -> bytes:
    """Returns the SHA-256 digest a key is stored and found by."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()


def shown_prefix(secret: str) -> str:
    """Returns the start of a secret that listings show (`gw_` and eight characters)."""
    return secret[:_SHOWN]


def same(given: str, expected: str) -> bool:
    """Compares two secrets in constant time."""
    return hmac.compare_digest(digest(given), digest(expected))
