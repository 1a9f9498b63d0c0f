"""Bearer tokens, kept only as hashes: a leaked settings file or database gives no token away.

A token is 32 random bytes (URL-safe base64, `new_token`); what is stored is `sha256:<hex>` of it. Tokens are
random and long, so a fast hash is enough (no salt or stretching needed, unlike passwords), and comparing hashes in
constant time (`hmac.compare_digest`) leaks nothing through timing.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence

__all__ = ["hash_token", "is_token_hash", "new_token", "token_matches"]

_HASH = re.compile(r"^sha256:[0-9a-f]{64}$")


def new_token() -> str:
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return "sha256:" + hashlib.sha256(token.encode("utf-8")).hexdigest()


def is_token_hash(value: str) -> bool:
    return bool(_HASH.match(value))


def token_matches(authorization: str | None, hashes: Sequence[str]) -> bool:
    """Whether an `Authorization: Bearer <token>` header carries one of the accepted tokens."""
    if not authorization or not hashes:
        return False
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return False
    digest = hash_token(token.strip())
    matches = [hmac.compare_digest(digest, h) for h in hashes]  # every hash compared: no early exit
    return any(matches)
