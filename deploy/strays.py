"""Finds and removes what test runs and benchmarks left behind on the local broker and database server.

python -m deploy.strays [--dry-run]          (make clean-sandboxes)

A sandbox (deploy/sandbox.py) is a vhost `simpul-<label>-<run>`, broker users `<l><run>-...`, a database
`simpul_<label>_<run>` and its roles `simpul_<label>_<run>_<service>`, all named by one 8-hex run id. A run
still in progress on this machine holds a marker naming its process (sandbox.MARKERS): its sandbox is left
alone while that process lives. Everything else with a sandbox's name is a stray and goes. The installation
of `make run` (vhost and database `simpul`) has no run id and is never touched.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass, field

import asyncpg

from deploy import dbroles, provision
from deploy.sandbox import MARKERS, Servers
from shared import db

VHOST = re.compile(r"^simpul-[a-z0-9-]+-(?P<run>[0-9a-f]{8})$")
USER = re.compile(r"^[a-z](?P<run>[0-9a-f]{8})-")
DATABASE = re.compile(r"^simpul_[a-z0-9_]+_(?P<run>[0-9a-f]{8})$")
ROLE = re.compile(r"^simpul_[a-z0-9_]+_(?P<run>[0-9a-f]{8})_[a-z]+$")


@dataclass
class Leftovers:
    """One run's remains, wherever they are."""

    run: str
    vhosts: list[str] = field(default_factory=list)
    users: list[str] = field(default_factory=list)
    databases: list[str] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)

    def describe(self) -> str:
        parts = [f"{len(v)} {k}" for k, v in vars(self).items() if k != "run" and v]
        return f"run {self.run}: " + ", ".join(parts)


def in_use(run: str) -> bool:
    """A marker whose process still lives on this machine."""
    try:
        pid = int((MARKERS / run).read_text().strip())
    except (OSError, ValueError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, someone else's
    return True


def _rabbitmqctl(servers: Servers, *args: str) -> list[str]:
    out = subprocess.run(
        [*servers.rabbitmqctl, *args, "--silent"], capture_output=True, text=True, check=True, timeout=120
    )
    return [line.split("\t")[0] for line in out.stdout.splitlines() if line.strip()]


async def _server_names(servers: Servers) -> tuple[list[str], list[str]]:
    conn = await asyncpg.connect(db.with_database(servers.database_url, "postgres"))
    try:
        databases = [r[0] for r in await conn.fetch("SELECT datname FROM pg_database")]
        roles = [r[0] for r in await conn.fetch("SELECT rolname FROM pg_roles")]
    finally:
        await conn.close()
    return databases, roles


def find(servers: Servers) -> tuple[list[Leftovers], list[str]]:
    """The leftovers of runs no longer in progress, and the runs skipped because they still are."""
    found: dict[str, Leftovers] = defaultdict(lambda: Leftovers(""))

    def add(pattern: re.Pattern[str], names: list[str], kind: str) -> None:
        for name in names:
            if m := pattern.match(name):
                entry = found[m["run"]]
                entry.run = m["run"]
                getattr(entry, kind).append(name)

    add(VHOST, _rabbitmqctl(servers, "list_vhosts", "name"), "vhosts")
    add(USER, _rabbitmqctl(servers, "list_users"), "users")
    databases, roles = asyncio.run(_server_names(servers))
    add(DATABASE, databases, "databases")
    add(ROLE, roles, "roles")
    busy = sorted(run for run in found if in_use(run))
    return [found[run] for run in sorted(found) if run not in busy], busy


def remove(servers: Servers, leftovers: Leftovers) -> None:
    backend = provision.RabbitmqctlBackend(servers.rabbitmqctl)
    for vhost in leftovers.vhosts:
        backend.delete_vhost(vhost)
    backend.delete_users(leftovers.users)
    for database in leftovers.databases:
        asyncio.run(db.drop_database(db.with_database(servers.database_url, database)))
    asyncio.run(dbroles.drop_roles(servers.database_url, leftovers.roles))
    (MARKERS / leftovers.run).unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deploy.strays",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--dry-run", action="store_true", help="only list what would go")
    args = parser.parse_args(argv)
    servers = Servers(  # the local servers, named as `make test` names them
        os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"),
        os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        tuple(os.environ.get("RABBITMQCTL", "rabbitmqctl").split()),
    )
    try:
        strays, busy = find(servers)
    except (subprocess.SubprocessError, OSError, asyncpg.PostgresError) as e:
        print(f"strays: cannot list the servers' contents: {e}", file=sys.stderr)
        return 1
    for run in busy:
        print(f"in use (left alone): run {run}")
    if not strays:
        print("no stray sandboxes")
        return 0
    for leftovers in strays:
        print(("would remove " if args.dry_run else "removing ") + leftovers.describe(), flush=True)
        if not args.dry_run:
            remove(servers, leftovers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
