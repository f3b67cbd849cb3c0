"""Monitor logins: password hashing and `python -m services.monitor.accounts import <credentials.csv>`."""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from shared.passwords import hash_password as hash_password
from shared.passwords import verify_password as verify_password
from shared.runtime import Database

from .store import Account, PostgresMonitorStore


class Login(Protocol):
    @property
    def unit_id(self) -> str: ...
    @property
    def username(self) -> str: ...
    @property
    def password(self) -> str: ...


# Spends the same time on an unknown username as on a wrong password, so usernames cannot be probed.
DUMMY_HASH = hash_password(secrets.token_urlsafe(8))


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


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Import monitor logins (role 'monitor') from a credentials file."
    )
    parser.add_argument("command", choices=["import"])
    parser.add_argument("credentials", type=Path)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/simpul"),
    )
    args = parser.parse_args()
    logins = read_logins(args.credentials)
    print(f"{asyncio.run(import_accounts(args.database_url, logins))} monitor logins imported")


if __name__ == "__main__":
    main()
