"""Who may log in now, and which requests may change anything: pure rules, no I/O."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class LoginPolicy:
    """After `max_failures` failed logins within `window` (for one username, or from one address), logins
    are refused until `lockout` has passed since the last failure, even with the right password."""

    max_failures: int = 5
    window: timedelta = timedelta(minutes=15)
    lockout: timedelta = timedelta(minutes=15)


@dataclass(frozen=True)
class Gate:
    open: bool
    retry_after_s: int = 0


def decide_login_gate(failures: Sequence[datetime], now: datetime, policy: LoginPolicy) -> Gate:
    """`failures`: the failed logins of one username or one address (any order)."""
    recent = sorted(f for f in failures if now - f < policy.window)
    if len(recent) < policy.max_failures:
        return Gate(True)
    until = recent[-1] + policy.lockout
    if now >= until:
        return Gate(True)
    return Gate(False, retry_after_s=max(1, int((until - now).total_seconds() + 0.999)))


def origin_of(url: str) -> str:
    """scheme://host[:port] of a URL (its origin as a browser states it), lower-cased; '' if it has none."""
    scheme, sep, rest = url.partition("://")
    if not sep or not rest:
        return ""
    return f"{scheme}://{rest.split('/', 1)[0]}".lower()


def decide_same_origin(method: str, origin: str | None, referer: str | None, own: Sequence[str]) -> bool:
    """Whether a request may change state (CSRF rule): a safe method always; any other only when the browser
    says it comes from one of the monitor's own origins (`Origin`, else the origin of `Referer`). A request
    that says neither is refused: every browser in use sends `Origin` on a POST."""
    if method.upper() in SAFE_METHODS:
        return True
    stated = origin if origin and origin != "null" else origin_of(referer or "")
    return bool(stated) and stated.lower() in {o.lower() for o in own}
