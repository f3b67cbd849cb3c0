"""Password hashing for people's logins: scrypt, checked in constant time."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from functools import cache

# scrypt with n=2**14, r=8: about 16 MB and 50 ms per check, slow enough to make guessing expensive.
_N, _R, _P = 2**14, 8, 1


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    salt = salt or os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        candidate = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=32
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(candidate, base64.b64decode(digest))


@cache
def dummy_hash() -> str:
    """A hash no password matches, to check against when the username is unknown: the same time is spent as
    on a wrong password, so usernames cannot be probed. Made on first use (it costs one hashing)."""
    return hash_password(secrets.token_urlsafe(16))
