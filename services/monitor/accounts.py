"""Monitor logins: `python -m services.monitor.accounts import|create|reset|disable|enable|list`.

A login's scope is a unit id: `pusat` (the centre), `kanwil-<prov>`, an `upt-...` or a `dukcapil-...` id.
Passwords are generated (printed once, never stored in clear) unless given on standard input.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import secrets
import sys
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from shared.passwords import hash_password as hash_password
from shared.passwords import verify_password as verify_password
from shared.runtime import Database
from shared.settings import PROJECT_ROOT
from shared.units import Units, load_units

from .store import Account, MonitorStore, PostgresMonitorStore


class Login(Protocol):
    @property
    def unit_id(self) -> str: ...
    @property
    def username(self) -> str: ...
    @property
    def password(self) -> str: ...


async def import_accounts(
    database_url: str, logins: Sequence[Login], *, refresh: Collection[str] | None = None
) -> int:
    """Create the logins (role derived from their unit id) that the monitor lacks, and set the password of
    those named in `refresh` (all of them when it is None). Hashing is slow on purpose, so nothing else is."""
    database = Database.of_service(database_url, "monitor")
    await database.open()
    try:
        store = PostgresMonitorStore(database)
        known = await store.usernames()
        todo = [c for c in logins if c.username not in known or refresh is None or c.username in refresh]
        loop = asyncio.get_running_loop()
        hashes = await asyncio.gather(*(loop.run_in_executor(None, hash_password, c.password) for c in todo))
        await store.upsert_accounts(
            [Account(c.username, h, c.unit_id) for c, h in zip(todo, hashes, strict=True)]
        )
        return len(todo)
    finally:
        await database.close()


class AccountError(Exception):
    """A command that cannot be done (said to the operator, exit status 1)."""


def known_scope(unit_id: str, units: Units) -> bool:
    return (
        unit_id == "pusat"
        or any(k.kanwil_id == unit_id for k in units.kanwil)
        or units.upt(unit_id) is not None
        or any(d.unit_id == unit_id for d in units.dukcapil)
    )


async def manage(store: MonitorStore, args: argparse.Namespace, units: Units, password: str | None) -> str:
    """One command of the CLI against the store; what to tell the operator."""
    new_password = password or secrets.token_urlsafe(12)
    if args.command == "create":
        if not known_scope(args.scope, units):
            raise AccountError(
                f"{args.scope}: not pusat, a Kanwil, a UPT or a Dukcapil office of this installation"
            )
        if not await store.create_account(Account(args.username, hash_password(new_password), args.scope)):
            raise AccountError(f"{args.username}: a login of that name exists (use reset)")
        return f"{args.username} created for {args.scope}" + (
            "" if password else f"; password: {new_password}"
        )
    if args.command == "reset":
        if not await store.set_password(args.username, hash_password(new_password)):
            raise AccountError(f"{args.username}: no such login")
        return f"{args.username}: password changed, sessions ended" + (
            "" if password else f"; password: {new_password}"
        )
    if args.command in ("disable", "enable"):
        if not await store.set_disabled(args.username, args.command == "disable"):
            raise AccountError(f"{args.username}: no such login")
        return f"{args.username} {args.command}d" + (", sessions ended" if args.command == "disable" else "")
    rows = [
        f"{a.username}\t{a.unit_id}\t{'disabled' if a.disabled else 'active'}"
        for a in await store.list_accounts()
    ]
    return "\n".join(rows) or "no logins"


@dataclass(frozen=True)
class CsvLogin:
    unit_id: str
    username: str
    password: str


def read_logins(path: Path) -> list[CsvLogin]:
    """Rows of role `monitor` from a credentials file (columns role,unit_id,username,password)."""
    with path.open(encoding="utf-8") as f:
        return [
            CsvLogin(r["unit_id"], r["username"], r["password"])
            for r in csv.DictReader(f)
            if r["role"] == "monitor"
        ]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/simpul"),
    )
    p.add_argument(
        "--units-dir", type=Path, default=Path(os.environ.get("UNITS_DIR", PROJECT_ROOT / "deploy" / "units"))
    )
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("import", help="the monitor logins of a credentials file").add_argument(
        "credentials", type=Path
    )
    create = sub.add_parser("create", help="a new login (a password is generated unless --password-stdin)")
    create.add_argument("username")
    create.add_argument(
        "--scope", required=True, help="pusat, kanwil-<prov>, an upt-... or a dukcapil-... id"
    )
    for name in ("reset", "disable", "enable"):
        sub.add_parser(name).add_argument("username")
    for name in ("create", "reset"):
        sub.choices[name].add_argument(
            "--password-stdin", action="store_true", help="read the password from stdin"
        )
    sub.add_parser("list", help="every login, its scope and whether it is disabled")
    return p


async def run(args: argparse.Namespace) -> str:
    if args.command == "import":
        return f"{await import_accounts(args.database_url, read_logins(args.credentials))} monitor logins imported"
    password = None
    if getattr(args, "password_stdin", False):
        password = sys.stdin.readline().rstrip("\n")
        if len(password) < 10:
            raise AccountError("a password of at least 10 characters, please")
    database = Database.of_service(args.database_url, "monitor")
    await database.open()
    try:
        return await manage(PostgresMonitorStore(database), args, load_units(args.units_dir), password)
    finally:
        await database.close()


def main() -> None:
    args = parser().parse_args()
    try:
        print(asyncio.run(run(args)))
    except AccountError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
