"""Logins of the lookup API: checked (with a cache), imported, and managed by operators from the shell."""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import csv
import hashlib
import os
import secrets
import sys
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from shared.passwords import dummy_hash, hash_password, verify_password
from shared.runtime import Clock, Database, utcnow

from .lookup import ApiUser

ROLES = ("pusat", "kanwil", "upt", "dukcapil")
MAX_USERNAME, MAX_PASSWORD = 100, 200
# Credentials that may become logins here; service and database credentials never do.
_LOGIN_ROLES = frozenset({"monitor", "pusat", "upt", "dukcapil"})


class Login(Protocol):
    @property
    def role(self) -> str: ...
    @property
    def unit_id(self) -> str: ...
    @property
    def username(self) -> str: ...
    @property
    def password(self) -> str: ...


def _check(password: str, stored: str | None) -> bool:
    """Always one scrypt: an unknown or disabled login costs what a wrong password costs."""
    return verify_password(password, stored or dummy_hash()) and stored is not None


def basic_credentials(authorization: str) -> tuple[str, str] | None:
    """(username, password) of an `Authorization: Basic` header, None for anything else."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        username, sep, password = base64.b64decode(token.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (username, password) if sep and username else None


class Authenticator:
    """HTTP Basic logins against api_users. A verified (credentials, stored hash) pair is remembered for `ttl`
    so that repeated requests skip scrypt; the row is read every time, so disabling or resetting a login
    takes effect at once. Concurrent first checks of the same pair share one scrypt."""

    def __init__(
        self,
        fetch_user: Callable[[str], Awaitable[ApiUser | None]],
        *,
        ttl: timedelta = timedelta(seconds=60),
        clock: Clock = utcnow,
        max_entries: int = 10_000,
        check: Callable[[str, str | None], bool] = _check,
    ) -> None:
        self.fetch_user = fetch_user
        self.check = check
        self.ttl = ttl
        self.clock = clock
        self.max_entries = max_entries
        self._verified: dict[bytes, datetime] = {}
        self._checking: dict[bytes, asyncio.Future[bool]] = {}

    async def verify(self, username: str, password: str) -> ApiUser | None:
        plausible = len(username) <= MAX_USERNAME and len(password) <= MAX_PASSWORD and "\x00" not in username
        user = await self.fetch_user(username) if plausible else None
        stored = user.password_hash if user is not None and not user.disabled else None
        if user is None or stored is None:
            await asyncio.to_thread(self.check, password[:MAX_PASSWORD], None)
            return None
        key = _key(username, password, stored)
        now = self.clock()
        if (until := self._verified.get(key)) is not None and until > now:
            return user
        check = self._checking.get(key)
        if check is None:
            check = asyncio.ensure_future(asyncio.to_thread(self.check, password, stored))
            self._checking[key] = check
            check.add_done_callback(lambda _: self._checking.pop(key, None))
        if not await asyncio.shield(check):  # one waiter giving up must not cancel the others' check
            return None
        self._remember(key, now + self.ttl)
        return user

    def _remember(self, key: bytes, until: datetime) -> None:
        if len(self._verified) >= self.max_entries:
            now = self.clock()
            self._verified = {k: t for k, t in self._verified.items() if t > now}
            if len(self._verified) >= self.max_entries:
                self._verified.clear()
        self._verified[key] = until


def _key(username: str, password: str, stored: str) -> bytes:
    digest = hashlib.sha256()
    for part in (username, password, stored):
        data = part.encode("utf-8", "surrogatepass")
        digest.update(len(data).to_bytes(4, "big") + data)
    return digest.digest()


def api_role(login: Login) -> str | None:
    """The API role of a credential: the centre's logins are pusat; Kanwil, UPT and Dukcapil ones are
    known (so that they are refused as such, not as strangers); service credentials are none."""
    if login.role not in _LOGIN_ROLES:
        return None
    if login.unit_id == "pusat":
        return "pusat" if login.role in ("monitor", "pusat") else None
    return next((r for r in ROLES[1:] if login.unit_id.startswith(f"{r}-")), None)


def plan_users(logins: Sequence[Login]) -> list[tuple[Login, str]]:
    """One login per username with its role. A monitor login and a broker user may share a name (`pusat`,
    `dukcapil-3273` without a namespace): the monitor login, the one people type, is kept."""
    chosen: dict[str, tuple[Login, str]] = {}
    for login in sorted(logins, key=lambda c: c.role != "monitor"):
        role = api_role(login)
        if role is not None and login.username not in chosen:
            chosen[login.username] = (login, role)
    return list(chosen.values())


async def import_users(dsn: str, logins: Sequence[Login], *, refresh: Collection[str] | None = None) -> int:
    """As the administrator (search_path consolidator, migrations applied): create the logins api_users lacks,
    set the role of every one, and the password of those named in `refresh` (all when None). Returns how many
    passwords were written; hashing is slow on purpose, so only those are hashed."""
    database = Database.of_service(dsn, "consolidator")
    await database.open()
    try:
        pool = database.pool
        known = {r["username"] for r in await pool.fetch("SELECT username FROM api_users")}
        planned = plan_users(logins)
        todo = [
            (c, r) for c, r in planned if c.username not in known or refresh is None or c.username in refresh
        ]
        hashes = await asyncio.gather(*(asyncio.to_thread(hash_password, c.password) for c, _ in todo))
        async with pool.acquire() as conn, conn.transaction():
            await conn.executemany(
                "INSERT INTO api_users (username, role, password_hash) VALUES ($1, $2, $3) "
                "ON CONFLICT (username) DO UPDATE SET role = EXCLUDED.role, password_hash = EXCLUDED.password_hash",
                [(c.username, r, h) for (c, r), h in zip(todo, hashes, strict=True)],
            )
            await conn.executemany(
                "UPDATE api_users SET role = $2 WHERE username = $1 AND role <> $2",
                [(c.username, r) for c, r in planned],
            )
        return len(todo)
    finally:
        await database.close()


async def _admin(dsn: str, sql: str, *args: object) -> str:
    database = Database.of_service(dsn, "consolidator")
    await database.open()
    try:
        return str(await database.pool.execute(sql, *args))
    finally:
        await database.close()


async def create_user(dsn: str, username: str, role: str, password: str) -> bool:
    """False when the username exists already."""
    hashed = await asyncio.to_thread(hash_password, password)
    status = await _admin(
        dsn,
        "INSERT INTO api_users (username, role, password_hash) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        username,
        role,
        hashed,
    )
    return status == "INSERT 0 1"


async def reset_user(dsn: str, username: str, password: str, role: str | None = None) -> bool:
    """New password, enabled again, role changed when given. False for an unknown username."""
    hashed = await asyncio.to_thread(hash_password, password)
    status = await _admin(
        dsn,
        "UPDATE api_users SET password_hash = $2, disabled = false, role = COALESCE($3, role) WHERE username = $1",
        username,
        hashed,
        role,
    )
    return status == "UPDATE 1"


async def disable_user(dsn: str, username: str) -> bool:
    """False for an unknown username."""
    return (
        await _admin(dsn, "UPDATE api_users SET disabled = true WHERE username = $1", username) == "UPDATE 1"
    )


@dataclass(frozen=True)
class CsvLogin:
    role: str
    unit_id: str
    username: str
    password: str


def read_logins(path: Path) -> list[CsvLogin]:
    """Every row of a credentials file (columns role,unit_id,username,password)."""
    with path.open(encoding="utf-8") as f:
        return [CsvLogin(r["role"], r["unit_id"], r["username"], r["password"]) for r in csv.DictReader(f)]


def _new_password(from_stdin: bool) -> tuple[str, bool]:
    """(password, generated): read from standard input, or generated and to be shown once."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if len(password) < 12:
            raise SystemExit("a password of at least 12 characters is needed on standard input")
        return password, False
    return secrets.token_urlsafe(18), True


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m services.consolidator.api_users",
        description="Manage the logins of the consolidator's lookup API.",
    )
    parser.add_argument("command", choices=["create", "reset", "disable", "import"])
    parser.add_argument("target", help="the username, or for import the credentials file")
    parser.add_argument("--role", choices=ROLES, help="needed by create; reset changes it when given")
    parser.add_argument(
        "--password-stdin", action="store_true", help="read the password instead of generating"
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/simpul"),
        help="an administrator's connection (it applies the consolidator's migrations if needed)",
    )
    args = parser.parse_args(argv)
    dsn, username = args.database_url, args.target
    if args.command == "import":
        count = asyncio.run(import_users(dsn, read_logins(Path(args.target))))
        print(f"{count} lookup API logins imported")
        return
    if args.command == "disable":
        if not asyncio.run(disable_user(dsn, username)):
            raise SystemExit(f"no login {username!r}")
        print(f"{username} disabled")
        return
    if args.command == "create" and args.role is None:
        parser.error("create needs --role")
    password, generated = _new_password(args.password_stdin)
    if args.command == "create":
        if not asyncio.run(create_user(dsn, username, args.role, password)):
            raise SystemExit(f"login {username!r} exists already: use reset")
    elif not asyncio.run(reset_user(dsn, username, password, args.role)):
        raise SystemExit(f"no login {username!r}")
    print(f"{username}: {password}" if generated else f"{username}: password set")


if __name__ == "__main__":
    main()
