"""Logging in: the password check, the back-off after failed attempts (per username and per address), sessions."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from shared import passwords

from .domain.access import LoginPolicy, decide_login_gate
from .store import Account, MonitorStore

log = logging.getLogger("simpul.monitor.logins")


@dataclass(frozen=True)
class LoginOutcome:
    account: Account | None = None
    token: str | None = None  # the session cookie's value (only its hash is stored)
    retry_after_s: int = 0  # > 0: refused without checking the password, until then


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Logins:
    STRIPES = 64

    def __init__(self, store: MonitorStore, policy: LoginPolicy, session_hours: float) -> None:
        self.store = store
        self.policy = policy
        self.session_hours = session_hours
        # Attempts for one name (or from one address) are taken one at a time: a burst read the failure count
        # all at once, before any of its failures was recorded, and every password in it was checked.
        self._stripes = [asyncio.Lock() for _ in range(self.STRIPES)]

    async def log_in(self, username: str, password: str, address: str, now: datetime) -> LoginOutcome:
        if "\x00" in username or "\x00" in password:
            return LoginOutcome()  # no such login can exist; nothing to count either
        async with contextlib.AsyncExitStack() as held:  # (always in the same order: no deadlock)
            for n in sorted({hash(username) % self.STRIPES, hash(address) % self.STRIPES}):
                await held.enter_async_context(self._stripes[n])
            return await self._log_in(username, password, address, now)

    async def _log_in(self, username: str, password: str, address: str, now: datetime) -> LoginOutcome:
        keys = [f"user:{username}", f"addr:{address}"]
        failures = await self.store.login_failures(keys, now - self.policy.window)
        # An address may be an office's NAT or a proxy, shared by many people: it gets four times the attempts.
        shared = replace(self.policy, max_failures=self.policy.max_failures * 4)
        gates = [
            decide_login_gate(failures[keys[0]], now, self.policy),
            decide_login_gate(failures[keys[1]], now, shared),
        ]
        if not all(g.open for g in gates):
            log.warning("monitor login refused: too many failures", extra={"username": username})
            return LoginOutcome(retry_after_s=max(g.retry_after_s for g in gates))
        account = await self.store.account(username)
        loop = asyncio.get_running_loop()
        stored = account.password_hash if account else passwords.dummy_hash()  # same time for unknown names
        ok = await loop.run_in_executor(None, passwords.verify_password, password, stored)
        if account is None or not ok or account.disabled:
            await self.store.record_login_failure(keys, now)
            log.warning("monitor login refused", extra={"username": username})
            return LoginOutcome()
        await self.store.clear_login_failures(keys)
        token = secrets.token_urlsafe(32)
        await self.store.create_session(
            token_hash(token), account.username, now + timedelta(hours=self.session_hours)
        )
        log.info("monitor login", extra={"username": account.username, "scope": account.unit_id})
        return LoginOutcome(account=account, token=token)
